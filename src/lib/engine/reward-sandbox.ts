/**
 * Inside the reward worker (src/workers/reward-fn.worker.ts): take away everything that reaches
 * the network or the user's stored data before any user code is compiled, then answer batches.
 *
 * A shared link can carry someone else's code, so the worker scope loses fetch, XMLHttpRequest,
 * WebSocket, EventSource, WebTransport, importScripts, nested workers, BroadcastChannel,
 * IndexedDB, the Cache API, navigator.storage and friends: each name is deleted from the global
 * object and its prototypes and then pinned to `undefined` (not configurable), so neither
 * `self.fetch` nor `Function('return this')().fetch` finds it. The worker's own response carries
 * a Content-Security-Policy of its own (vite.config.ts, `REWARD_WORKER_CSP`: `connect-src 'none'`,
 * `worker-src 'none'`, and the `'unsafe-eval'` that compiling needs), a second wall.
 */
import {
  compileRewardFunction,
  definitionLine,
  RewardFunctionError,
  runCompiled,
  type CompiledReward,
} from '../rlhf/reward-functions';

/** Globals a reward function must not reach. */
export const BLOCKED_GLOBALS = [
  'fetch',
  'XMLHttpRequest',
  'WebSocket',
  'WebSocketStream',
  'EventSource',
  'WebTransport',
  'importScripts',
  'Worker',
  'SharedWorker',
  'BroadcastChannel',
  'indexedDB',
  'IDBFactory',
  'caches',
  'CacheStorage',
  'cookieStore',
  'webkitRequestFileSystem',
  'webkitRequestFileSystemSync',
  'webkitResolveLocalFileSystemURL',
  'webkitResolveLocalFileSystemSyncURL',
  'FileSystemHandle',
  'FileSystemDirectoryHandle',
  'FileSystemFileHandle',
  'FileSystemSyncAccessHandle',
  'StorageManager',
  'postMessage',
] as const;

/** Properties of `navigator` taken away. */
const BLOCKED_NAVIGATOR = ['storage', 'storageBuckets', 'locks', 'serviceWorker', 'sendBeacon'] as const;

function blockOn(obj: object, name: string): void {
  for (let o: object | null = obj; o; o = Object.getPrototypeOf(o)) {
    const d = Object.getOwnPropertyDescriptor(o, name);
    if (d?.configurable) delete (o as Record<string, unknown>)[name];
  }
  try {
    Object.defineProperty(obj, name, { value: undefined, writable: false, configurable: false, enumerable: false });
  } catch {
    /* a non-configurable own property stays; checked by the e2e test */
  }
}

/** Take the blocked names away from `scope` (the worker's global object). */
export function lockDown(scope: object): void {
  const nav = (scope as { navigator?: object }).navigator;
  if (nav) for (const name of BLOCKED_NAVIGATOR) blockOn(nav, name);
  for (const name of BLOCKED_GLOBALS) blockOn(scope, name);
}

export interface RewardBatchMessage {
  id: number;
  functions: { name: string; code: string }[];
  prompts: string[];
  completions: string[];
  completionIds: number[][];
  finished: boolean[];
}

export type RewardReply =
  | { id: number; ok: true; parts: number[][] }
  | { id: number; started: number }
  | {
      id: number;
      ok: false;
      error: { message: string; fn: string; line: number | null; failure: RewardFunctionError['failure'] };
    };

/** Compiles functions once per code text and runs batches with them. */
export class RewardEvaluator {
  private cache = new Map<string, CompiledReward>();

  /** `onStart(i)` is called as function i starts (so a hang can be blamed on the right one). */
  async run(msg: Omit<RewardBatchMessage, 'id'>, onStart?: (index: number) => void): Promise<number[][]> {
    const fns = msg.functions.map((f, index) => {
      const key = `${index}\u0000${f.code}`;
      let fn = this.cache.get(key);
      if (!fn) {
        fn = compileRewardFunction(f, index);
        this.cache.set(key, fn);
      }
      return { name: f.name, fn, index, line: definitionLine(f.code) };
    });
    return runCompiled(
      fns,
      msg.prompts,
      msg.completions,
      { completionIds: msg.completionIds, finished: msg.finished },
      onStart,
    );
  }

  /** A reply for the parent: the scores, or the error as plain data. */
  async reply(msg: RewardBatchMessage, onStart?: (index: number) => void): Promise<RewardReply> {
    try {
      return { id: msg.id, ok: true, parts: await this.run(msg, onStart) };
    } catch (e) {
      const err =
        e instanceof RewardFunctionError
          ? e
          : new RewardFunctionError(
              `Reward functions failed: ${String((e as Error)?.message ?? e)}`,
              '',
              null,
              'setup',
            );
      return {
        id: msg.id,
        ok: false,
        error: { message: err.message, fn: err.fn, line: err.line, failure: err.failure },
      };
    }
  }
}
