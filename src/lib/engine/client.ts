/**
 * Main-thread side of the engine. Starts the worker and wraps it with Comlink;
 * if the worker cannot start, runs the same engine in-thread and says so.
 * Every method of the returned `Engine` revives named errors, and callbacks
 * passed to it are wrapped in `Comlink.proxy` automatically.
 */
import * as Comlink from 'comlink';
import { installErrorTransfer, reviveError } from './errors';
import type { Engine, EngineTestHooks } from './types';

export type EngineMode = 'worker' | 'in-thread';

export interface EngineHandle {
  engine: Engine;
  /** The same engine seen through its test hooks (end-to-end tests only). */
  testHooks: EngineTestHooks;
  mode: EngineMode;
  /** Why the engine runs in-thread, when it does. */
  fallbackReason?: string;
  terminate(): void;
}

const WORKER_START_TIMEOUT_MS = 20_000;

/** Wrap an engine (remote or local) so errors come back as named classes and callbacks cross the boundary. */
function wrap<T extends object>(target: T, remote: boolean): T {
  return new Proxy(target, {
    get(obj, prop) {
      const value = Reflect.get(obj, prop) as unknown;
      if (typeof prop !== 'string' || prop === 'then') return value;
      return async (...args: unknown[]) => {
        const mapped = remote ? args.map((a) => (typeof a === 'function' ? Comlink.proxy(a as () => void) : a)) : args;
        try {
          // Reflect.apply, not value.apply: on a Comlink proxy `.apply` would be a remote property.
          return await Reflect.apply(value as (...a: unknown[]) => Promise<unknown>, obj, mapped);
        } catch (e) {
          throw reviveError(e);
        }
      };
    },
  });
}

type EngineObject = Engine & EngineTestHooks;

async function startWorker(): Promise<{ engine: EngineObject; worker: Worker }> {
  installErrorTransfer(); // errors arrive with their own data (`details`) for reviveError
  const worker = new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), {
    type: 'module',
    name: 'engine',
  });
  const remote = Comlink.wrap<EngineObject>(worker) as unknown as EngineObject;
  // A worker that fails to load its module fires `error` and never answers; race a ping against it.
  const failed = new Promise<never>((_, reject) => {
    worker.addEventListener('error', (e) => reject(new Error(e.message || 'the worker script failed to load')), {
      once: true,
    });
    setTimeout(() => reject(new Error('the worker did not answer')), WORKER_START_TIMEOUT_MS);
  });
  await Promise.race([remote.ping(), failed]);
  return { engine: remote, worker };
}

export async function startEngine(opts: { forceInThread?: boolean } = {}): Promise<EngineHandle> {
  let reason = 'asked to run in-thread';
  if (!opts.forceInThread && typeof Worker !== 'undefined') {
    try {
      const { engine, worker } = await startWorker();
      const wrapped = wrap(engine, true);
      return { engine: wrapped, testHooks: wrapped, mode: 'worker', terminate: () => worker.terminate() };
    } catch (e) {
      reason = (e as Error).message;
    }
  } else if (typeof Worker === 'undefined') {
    reason = 'this browser has no Web Workers';
  }
  const { createEngine } = await import('./engine');
  const wrapped = wrap(createEngine(), false);
  return { engine: wrapped, testHooks: wrapped, mode: 'in-thread', fallbackReason: reason, terminate: () => {} };
}
