/**
 * Runs the user's reward functions (src/lib/rlhf/reward-functions.ts) in their own Web Worker
 * (src/workers/reward-fn.worker.ts), started from wherever the engine runs (its worker, or the
 * page with `engine=main`; the page's "Test on samples" starts its own). Each batch has a time
 * limit: a function that hangs gets its worker terminated and a fresh one started for the next
 * batch, and the batch fails with a `RewardFunctionError` naming the function.
 *
 * `functionRewardSource` makes a weighted sum of the functions a `RewardSource` (ppo.ts) that
 * also hands out each function's scores of the last batch, for `rewards/<name>/mean|std`.
 *
 * Without Web Workers (Node: unit tests, scripts) the functions run in-process, with no
 * sandbox and no limit on a synchronous endless loop.
 */
import type { RewardInput, RewardSource } from '../rlhf/ppo';
import {
  checkSpecs,
  combineWeighted,
  definitionLine,
  failureMessage,
  REWARD_TIME_LIMIT_MS,
  RewardFunctionError,
  type RewardFunctionSpec,
} from '../rlhf/reward-functions';
import { RewardEvaluator, type RewardReply } from './reward-sandbox';

/** How long a fresh worker may take to load its script. */
const START_TIMEOUT_MS = 20_000;

export function spawnRewardWorker(): Worker {
  return new Worker(new URL('../../workers/reward-fn.worker.ts', import.meta.url), {
    type: 'module',
    name: 'reward-fn',
  });
}

export interface RewardBatch {
  prompts: string[];
  completions: string[];
  completionIds?: number[][];
  /** Each completion ended with end-of-text; not given: every completion counts as finished. */
  finished?: boolean[];
}

export class RewardFunctionRunner {
  private worker: Worker | null = null;
  private ready: Promise<Worker> | null = null;
  private seq = 0;
  private local: RewardEvaluator | null = null;
  /** Workers started so far (a hang restarts it). */
  starts = 0;

  constructor(
    readonly timeLimitMs = REWARD_TIME_LIMIT_MS,
    private spawn: (() => Worker) | null = typeof Worker === 'undefined' ? null : spawnRewardWorker,
  ) {}

  /** Each function's scores of the batch, in the order given; throws RewardFunctionError. */
  async run(functions: { name: string; code: string }[], batch: RewardBatch): Promise<number[][]> {
    const msg = {
      functions: functions.map(({ name, code }) => ({ name, code })),
      prompts: [...batch.prompts],
      completions: [...batch.completions],
      completionIds: batch.completionIds ?? batch.completions.map(() => []),
      finished: batch.finished ?? batch.completions.map(() => true),
    };
    if (!this.spawn) return (this.local ??= new RewardEvaluator()).run(msg);
    const w = await this.start();
    const id = ++this.seq;
    return new Promise<number[][]>((resolve, reject) => {
      let current = 0;
      const done = () => {
        clearTimeout(timer);
        w.removeEventListener('message', onMessage);
        w.removeEventListener('error', onError);
      };
      const timer = setTimeout(() => {
        done();
        this.stop(); // an endless loop never yields: only terminate stops it
        const f = functions[current];
        const n = batch.completions.length;
        reject(
          new RewardFunctionError(
            failureMessage(
              f?.name ?? '?',
              f ? definitionLine(f.code) : null,
              `did not finish a batch of ${n} completions within ${this.timeLimitMs / 1000} s (an endless loop?); it was stopped`,
            ),
            f?.name ?? '',
            f ? definitionLine(f.code) : null,
            'timeout',
          ),
        );
      }, this.timeLimitMs);
      const onMessage = (e: MessageEvent<RewardReply>) => {
        const r = e.data;
        if (r?.id !== id) return;
        if ('started' in r) {
          current = r.started;
          return;
        }
        done();
        if (r.ok) resolve(checkParts(r.parts, functions.length, batch.completions.length));
        else reject(new RewardFunctionError(r.error.message, r.error.fn, r.error.line, r.error.failure));
      };
      const onError = (e: ErrorEvent) => {
        done();
        this.stop();
        reject(
          new RewardFunctionError(`The reward worker failed: ${e.message || 'unknown error'}.`, '', null, 'setup'),
        );
      };
      w.addEventListener('message', onMessage);
      w.addEventListener('error', onError);
      w.postMessage({ id, ...msg });
    });
  }

  private start(): Promise<Worker> {
    if (this.ready) return this.ready;
    const w = this.spawn!();
    this.worker = w;
    this.starts++;
    this.ready = new Promise<Worker>((resolve, reject) => {
      const timer = setTimeout(() => fail('the reward worker did not start'), START_TIMEOUT_MS);
      const fail = (why: string) => {
        clearTimeout(timer);
        this.stop();
        reject(new RewardFunctionError(`${why}; reload the page and try again.`, '', null, 'setup'));
      };
      w.addEventListener(
        'message',
        (e: MessageEvent<RewardReply>) => {
          if (e.data?.id !== 0) return;
          clearTimeout(timer);
          resolve(w);
        },
        { once: true },
      );
      w.addEventListener('error', (e) => fail(`The reward worker could not start (${e.message || 'script error'})`), {
        once: true,
      });
    });
    return this.ready;
  }

  /** Terminate the worker; the next batch starts a fresh one. */
  stop(): void {
    this.worker?.terminate();
    this.worker = null;
    this.ready = null;
  }

  dispose(): void {
    this.stop();
  }
}

/** The worker's answer is untrusted too: the right shape, finite numbers. */
function checkParts(parts: unknown, nf: number, n: number): number[][] {
  const ok =
    Array.isArray(parts) &&
    parts.length === nf &&
    parts.every(
      (p) => Array.isArray(p) && p.length === n && p.every((x) => typeof x === 'number' && Number.isFinite(x)),
    );
  if (!ok) throw new RewardFunctionError('The reward worker answered with malformed scores.', '', null, 'setup');
  return parts as number[][];
}

/** A reward source that also tells each part's scores of the last batch. */
export interface PartedRewardSource extends RewardSource {
  lastParts(): { name: string; scores: number[] }[] | null;
}

/** Σ weight · function, each function run in the runner's worker. */
export function functionRewardSource(specs: RewardFunctionSpec[], runner: RewardFunctionRunner): PartedRewardSource {
  const why = checkSpecs(specs);
  if (why) throw new RewardFunctionError(why, '', null, 'setup');
  let last: { name: string; scores: number[] }[] | null = null;
  return {
    async score(batch: RewardInput[]): Promise<number[]> {
      last = null;
      const parts = await runner.run(specs, {
        prompts: batch.map((x) => x.prompt),
        completions: batch.map((x) => x.text),
        completionIds: batch.map((x) => x.responseIds),
        finished: batch.map((x) => x.finished),
      });
      last = specs.map((s, f) => ({ name: s.name, scores: parts[f] }));
      return combineWeighted(
        parts,
        specs.map((s) => s.weight),
      );
    },
    lastParts: () => last,
  };
}
