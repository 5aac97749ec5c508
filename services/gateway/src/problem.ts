/**
 * RFC 9457 problem details. Throw a Problem anywhere in a route; the error handler turns it
 * into an `application/problem+json` response. `detail` is shown to API users: never put a
 * secret in it.
 */
export interface FieldProblem {
  path: string;
  message: string;
}

export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail?: string,
    readonly extra: Record<string, unknown> & { errors?: FieldProblem[]; type?: string } = {},
  ) {
    super(detail ?? title);
    this.name = "Problem";
  }

  toJSON() {
    const { type, ...rest } = this.extra;
    return {
      type: type ?? `https://transporter.dev/problems/${slug(this.title)}`,
      title: this.title,
      status: this.status,
      ...(this.detail ? { detail: this.detail } : {}),
      ...rest,
    };
  }
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
}

export const notFound = (what: string) => new Problem(404, "Not found", `${what} does not exist`);
export const badRequest = (detail: string, errors?: FieldProblem[]) => new Problem(400, "Invalid request", detail, errors ? { errors } : {});
export const conflict = (detail: string) => new Problem(409, "Conflict", detail);
