import { UnrecoverableError, WaitingError, type Job } from "bullmq";

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
 * Settles as `work` does; once `signal` is aborted, rejects with its reason as soon as the work
 * has stopped (it was asked to, through the signal), whatever its outcome: nothing of an aborted
 * attempt is recorded. Never before: until its work has stopped, the job stays this worker's (and
 * an exclusive stage's run stays locked), so no other worker runs it alongside (an upload that
 * had read its whole file would still be finishing). Work that never stops is ended by the
 * process's force-exit, and its job recovered as stalled, as before hand-backs.
 */
export async function settledOrAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  const stopped = work.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  const outcome = await stopped;
  if (signal.aborted) throw signal.reason as Error;
  if ("error" in outcome) throw outcome.error;
  return outcome.value;
}

/** Hand-backs of one job at most: one that outlasts every stop's grace period fails instead. */
export const MAX_HAND_BACKS = 5;

/**
 * Puts a job this worker holds (`token`) back at the head of its waiting list, then throws
 * WaitingError: BullMQ then neither fails nor completes it, and counts no attempt. A job whose
 * work was aborted is counted (in its data, `handBacks`); after MAX_HAND_BACKS it fails for good
 * instead (UnrecoverableError, with the reason; the reconciler fails its run with it): work that
 * outlasts every stop would otherwise be taken and handed back at each one, for ever. A job
 * taken as its worker paused, never begun, is not counted.
 */
export async function handBack(job: Job, token: string, options: { begun: boolean }): Promise<never> {
  const handBacks = Number((job.data as { handBacks?: unknown }).handBacks ?? 0) + (options.begun ? 1 : 0);
  if (handBacks > MAX_HAND_BACKS) {
    throw new UnrecoverableError(`it was handed back ${MAX_HAND_BACKS} times at a worker's stop: each attempt outlasted the stop's grace period (SHUTDOWN_GRACE_MS)`);
  }
  if (options.begun) await job.updateData({ ...(job.data as object), handBacks });
  await job.moveToWait(token);
  throw new WaitingError();
}
