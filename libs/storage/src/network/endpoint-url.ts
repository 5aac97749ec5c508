import { z } from "zod";

export const CREDENTIALS_IN_URL = "must not contain a user name or password: settings are not secret (viewer keys read them, audit events record them); credentials belong in the credentials fields";

/** Whether `value` is a URL with a user name or password (a value that is no URL is the url check's to report). */
export function hasUserInfo(value: string): boolean {
  try {
    const url = new URL(value);
    return url.username !== "" || url.password !== "";
  } catch {
    return false;
  }
}

/**
 * A destination's endpoint URL setting (an S3 endpoint, a Cloud Storage apiEndpoint): http(s),
 * without credentials in it. Which hosts are allowed is the endpoint policy's business.
 */
export function endpointUrlSchema() {
  return z.url({ protocol: /^https?$/ }).refine((value) => !hasUserInfo(value), CREDENTIALS_IN_URL);
}
