import type { Redis } from "@transporter/queue";

/**
 * Runs a Redis pipeline and returns a reader of its replies by position: the reply's value, or
 * the command's error thrown (a missing reply is an error too).
 */
export async function execPipeline(pipeline: ReturnType<Redis["pipeline"]>): Promise<(index: number) => unknown> {
  const replies = (await pipeline.exec()) ?? [];
  return (index) => {
    const [error, value] = replies[index] ?? [new Error("no reply"), null];
    if (error) throw error;
    return value;
  };
}
