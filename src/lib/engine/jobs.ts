/**
 * Long jobs: each has an id, can be cancelled, and fails with a named error
 * (rather than hanging) when the device under it is lost.
 */
import { DeviceLostError, JobCancelledError } from './errors';

/** Awaited between steps of a job: yields to the event loop, throws once the job is cancelled. */
export type Checkpoint = () => Promise<void>;

interface Running {
  cancelled: boolean;
  fail: (e: Error) => void;
}

export class JobRegistry {
  private running = new Map<string, Running>();

  /**
   * Run `body` as job `jobId`. `body` receives `checkpoint()`, which it awaits between steps:
   * it yields to the event loop (so a `cancel` message can arrive) and throws once cancelled.
   */
  async run<T>(jobId: string, body: (checkpoint: Checkpoint) => Promise<T>): Promise<T> {
    if (this.running.has(jobId)) throw new Error(`A job with id ${jobId} is already running`);
    let fail!: (e: Error) => void;
    const failed = new Promise<never>((_, reject) => (fail = reject));
    const entry: Running = { cancelled: false, fail };
    this.running.set(jobId, entry);
    const checkpoint = async () => {
      await new Promise((r) => setTimeout(r, 0));
      if (entry.cancelled) throw new JobCancelledError(`Job ${jobId} was cancelled.`);
    };
    try {
      return await Promise.race([body(checkpoint), failed]);
    } finally {
      this.running.delete(jobId);
    }
  }

  cancel(jobId: string): boolean {
    const j = this.running.get(jobId);
    if (!j) return false;
    j.cancelled = true;
    return true;
  }

  /** Fail every running job at once, e.g. when the device is lost. */
  failAll(message: string): void {
    for (const [id, j] of this.running) {
      j.cancelled = true;
      j.fail(new DeviceLostError(`${message} Job ${id} stopped; start it again.`));
    }
  }

  get size(): number {
    return this.running.size;
  }
}
