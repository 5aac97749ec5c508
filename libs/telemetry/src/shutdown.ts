/**
 * The grace period of this process's stop, as runServiceMain runs it on SIGTERM/SIGINT. Work
 * still under way when it ends is handed back rather than cut off by the force-exit that follows
 * (a stage worker puts its jobs back in their queue: see createStageWorker). In a process that
 * does not stop through runServiceMain (tests, the demo) it never ends.
 */
const graceOver = new AbortController();
let started = false;

/** Aborted once the process's stop has waited its grace period for the work under way. */
export function shutdownGraceOver(): AbortSignal {
  return graceOver.signal;
}

/** Starts the grace period: shutdownGraceOver() is aborted `graceMs` from now (once per process). */
export function startShutdownGrace(graceMs: number): void {
  if (started) return;
  started = true;
  // Unref'd: a stop that ends sooner exits without waiting for it.
  setTimeout(() => graceOver.abort(new Error(`the ${graceMs} ms shutdown grace period is over`)), graceMs).unref();
}
