import { WaitingError, type Job } from "bullmq";

/**
 * Handing jobs back when a worker stops. A stop waits for the jobs under way; one that would
 * outlast the stop's grace period (a source call that hangs) must not be cut off by the
 * force-exit: it would keep its lock until that lapsed, and BullMQ would count a stall against it
 * (enough of them fail the job, and its run). Instead its work is aborted and the job put back at
 * the head of its queue, where another worker takes it up at once: no stall, no attempt used.
 */

/** The reason a job's work is aborted when its worker hands the job back. */
export class HandedBack extends Error {
  constructor() {
    super("the worker is stopping and hands this job back to its queue");
    this.name = "HandedBack";
  }
}

/** The jobs a worker has under way, each with the signal that stops its work when it is handed back. */
export class JobsUnderWay {
  private readonly controllers = new Set<AbortController>();
  private handingBack = false;

  /** A job begins: its signal is aborted (HandedBack) by handBackAll(), at once if that has begun. */
  begin(): { signal: AbortSignal; end(): void } {
    const controller = new AbortController();
    if (this.handingBack) controller.abort(new HandedBack());
    this.controllers.add(controller);
    return { signal: controller.signal, end: () => void this.controllers.delete(controller) };
  }

  /** Aborts the work of every job under way, and of any that begins from now on. */
  handBackAll(): void {
    this.handingBack = true;
    for (const controller of this.controllers) controller.abort(new HandedBack());
  }
}

/**
 * Settles as `work` does, or rejects with `signal`'s reason as soon as it is aborted: work that
 * does not heed the signal is left to itself (nobody waits for it, nor for its outcome).
 */
export function unlessAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => undefined);
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Puts a job this worker holds (`token`) back at the head of its waiting list, then throws
 * WaitingError: BullMQ then neither fails nor completes it, and counts no attempt.
 */
export async function handBack(job: Job, token: string): Promise<never> {
  await job.moveToWait(token);
  throw new WaitingError();
}
