import { RedisConnection } from "bullmq";

/**
 * BullMQ's connection wrapper, quiet once closed. BullMQ reports a failed start-up by emitting
 * 'error' from the wrapper, but its close() removes every listener first: when the start-up
 * fails afterwards (the connection ends while Redis is away), that emit has no listener, so it
 * throws and surfaces as an unhandled rejection, which crashes a Node process (upstream
 * taskforcesh/bullmq#3546). A closed queue's or worker's errors interest no one: they are
 * dropped. Pass it as the `Connection` argument of `new Queue` and `new Worker`.
 */
export class QuietWhenClosedConnection extends RedisConnection {
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === "error" && this.closing && this.listenerCount("error") === 0) return false;
    return super.emit(event, ...args);
  }
}
