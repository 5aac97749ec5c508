/**
 * Bucket boundaries for histograms whose instruments give no advice. The SDK's default buckets
 * (0 … 10 000) suit milliseconds; stage durations are recorded in seconds, and the dashboard's
 * latency percentiles need buckets from tens of milliseconds to an hour.
 */
export const HISTOGRAM_BUCKETS: Readonly<Record<string, readonly number[]>> = {
  "transporter.stage.duration": [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
};
