/**
 * The user's reward functions, pure parts: compiling with the line of an error, checking
 * results, the ready examples on fixed inputs, weights, metrics, shared-link text, and the
 * in-process runner as a PPO reward source (Node has no Web Worker).
 */
import { describe, expect, it } from 'vitest';
import {
  checkSpecs,
  combineWeighted,
  compileRewardFunction,
  decodeCode,
  encodeCode,
  EXAMPLES,
  meanStd,
  rewardPartMetrics,
  RewardFunctionError,
  runCompiled,
  specsFromLink,
  specsToLink,
  syntaxErrorLine,
  validateScores,
  definitionLine,
} from '../../src/lib/rlhf/reward-functions';
import { functionRewardSource, RewardFunctionRunner } from '../../src/lib/engine/reward-fn-runner';
import { lockDown, RewardEvaluator, type RewardBatchMessage } from '../../src/lib/engine/reward-sandbox';

function errorOf(f: () => unknown): RewardFunctionError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RewardFunctionError);
    return e as RewardFunctionError;
  }
  throw new Error('expected a RewardFunctionError');
}

async function run(code: string, prompts: string[], completions: string[], ids?: number[][], finished?: boolean[]) {
  const fn = compileRewardFunction({ name: 'f', code }, 0);
  const [scores] = await runCompiled([{ name: 'f', fn, index: 0, line: definitionLine(code) }], prompts, completions, {
    completionIds: ids ?? completions.map(() => []),
    finished: finished ?? completions.map(() => true),
  });
  return scores;
}

/** Scores 1 for a finished completion, 0 for one the length limit cut off (the third argument). */
const FINISHED_CODE = 'function reward(p, c, { finished }) { return finished.map((f) => (f ? 1 : 0)); }';

describe('compiling', () => {
  it('finds the line of a syntax error', () => {
    const code = 'const a = 1;\nfunction reward(p, c) {\n  return c.map(() => a +);\n}\n';
    const e = errorOf(() => compileRewardFunction({ name: 'fmt', code }, 0));
    expect(e.failure).toBe('syntax');
    expect(e.line).toBe(3);
    expect(e.message).toMatch(/^Reward function "fmt", line 3: SyntaxError: /);
  });

  it('does not blame a line that only opens a call or a template', () => {
    expect(syntaxErrorLine('foo(1,\n  2)\nlet x = ;\n')).toBe(3);
    expect(syntaxErrorLine('const s = `a\nb`;\nx y\n')).toBe(3);
    expect(syntaxErrorLine('function reward(p, c) {\n  return c.map(() => 0);\n')).toBe(2); // missing }: the last line
    expect(syntaxErrorLine('const ok = 1;\n')).toBeNull();
  });

  it('says when reward is not defined, and accepts an arrow function', async () => {
    const e = errorOf(() => compileRewardFunction({ name: 'x', code: 'function score(p, c) { return []; }' }, 0));
    expect(e.failure).toBe('missing');
    expect(e.message).toContain('must define a function named reward');
    expect(await run('const reward = (p, c) => c.map((x) => x.length);', ['a'], ['abc'])).toEqual([3]);
  });

  it('names the line of a runtime error, also in a helper and at the top level', async () => {
    const code =
      'function helper(x) {\n  return x.missing.deep;\n}\nfunction reward(p, c) {\n  return c.map(helper);\n}';
    const err = await run(code, ['p'], ['c']).catch((e) => e);
    expect(err).toBeInstanceOf(RewardFunctionError);
    expect(err.line).toBe(2);
    expect(err.message).toMatch(/^Reward function "f", line 2: TypeError: /);
    const top = errorOf(() =>
      compileRewardFunction({ name: 't', code: 'const a = 1;\nnull.x;\nfunction reward() {}' }, 3),
    );
    expect(top.line).toBe(2);
    const thrown = await run('function reward(p, c) {\n\n  throw "nope";\n}', ['p'], ['c']).catch((e) => e);
    expect(thrown.message).toContain('threw "nope"');
  });

  it('runs in strict mode', async () => {
    const err = await run('function reward(p, c) {\n  undeclared = 1;\n  return [0];\n}', ['p'], ['c']).catch((e) => e);
    expect(err.line).toBe(2);
    expect(err.message).toContain('ReferenceError');
  });
});

describe('results', () => {
  it('accepts n finite numbers and refuses the rest, naming what is wrong', () => {
    expect(validateScores('f', [1, 2.5], 2)).toEqual([1, 2.5]);
    expect(validateScores('f', new Float32Array([1, 2]), 2)).toEqual([1, 2]);
    expect(errorOf(() => validateScores('f', [1], 2, 4)).message).toBe(
      'Reward function "f", line 4: it returned 1 scores for 2 completions (one per completion, in order).',
    );
    expect(errorOf(() => validateScores('f', [1, NaN], 2)).message).toContain('score 1 is NaN');
    expect(errorOf(() => validateScores('f', [1, Infinity], 2)).message).toContain('score 1 is Infinity');
    expect(errorOf(() => validateScores('f', [1, '2'], 2)).message).toContain('score 1 is the text "2", not a number');
    expect(errorOf(() => validateScores('f', [null, 1], 2)).message).toContain('score 0 is null');
    expect(errorOf(() => validateScores('f', undefined, 2)).message).toContain('returned undefined');
    expect(errorOf(() => validateScores('f', 3, 1)).failure).toBe('length');
  });

  it('blames a wrong-length result on the line that defines reward', async () => {
    const err = await run('// header\n\nfunction reward(p, c) {\n  return [];\n}', ['a', 'b'], ['x', 'y']).catch(
      (e) => e,
    );
    expect(err.line).toBe(3);
    expect(err.failure).toBe('length');
  });

  it('awaits an async function', async () => {
    expect(await run('async function reward(p, c) { return c.map(() => 0.5); }', ['a'], ['b'])).toEqual([0.5]);
  });
});

describe('examples', () => {
  const byId = (id: string) => EXAMPLES.find((e) => e.id === id)!.code;

  it('format: 1 when the completion ends with "!"', async () => {
    expect(await run(byId('format'), ['a', 'b', 'c'], ['Great movie!', 'ok.', 'wow! '])).toEqual([1, 0, 1]);
  });

  it('exact answer: the first number equals the sum', async () => {
    const prompts = ['What is 2 + 3?', 'What is 10 + -4?', 'Say hi', 'What is 1 + 1?'];
    expect(await run(byId('exact'), prompts, ['5', 'It is 6.', '5', 'maybe 3 or 2'])).toEqual([1, 1, 0, 0]);
  });

  it("soft over-long penalty: DAPO's piecewise line (max 24, cache 8)", async () => {
    const ids = [16, 17, 20, 24, 25].map((n) => Array.from({ length: n }, () => 7));
    const s = await run(
      byId('overlong'),
      ids.map(() => 'p'),
      ids.map(() => 'c'),
      ids,
    );
    expect(s[0]).toBe(0);
    expect(s[1]).toBeCloseTo(-1 / 8, 12);
    expect(s[2]).toBeCloseTo(-4 / 8, 12);
    expect(s[3]).toBeCloseTo(-1, 12);
    expect(s[4]).toBe(-1);
  });

  it('keyword: whole word, any case', async () => {
    expect(await run(byId('keyword'), ['a', 'b', 'c'], ['A GREAT film', 'greatest', 'great.'])).toEqual([1, 0, 1]);
  });

  it('length: 0 at 12 words, −|n − 12| / 12, at most −1', async () => {
    const words = (n: number) => Array.from({ length: n }, () => 'w').join(' ');
    const s = await run(byId('length'), ['a', 'b', 'c', 'd'], [words(12), words(9), words(30), '']);
    expect(s).toEqual([-0, -0.25, -1, -1]);
  });

  it('finished sentence: ends with . ! or ? and was not cut off by the length limit', async () => {
    const texts = [' good.', ' good.', ' wow!  ', ' really?', ' good and', ''];
    const finished = [true, false, true, true, true, true];
    const s = await run(
      byId('finished'),
      texts.map(() => 'p'),
      texts,
      undefined,
      finished,
    );
    expect(s).toEqual([1, 0, 1, 1, 0, 0]);
  });
});

describe('the third argument: completionIds and finished', () => {
  it('reaches the function per completion, in order, as copies a function cannot change for the next', async () => {
    const spoil =
      'function reward(p, c, x) { x.finished.fill(false); x.completionIds[0].push(9); return c.map(() => 0); }';
    const look =
      'function reward(p, c, x) { return x.finished.map((f, i) => (f ? 1 : 0) + 10 * x.completionIds[i].length); }';
    const fns = [spoil, look].map((code, index) => ({
      name: `f${index}`,
      fn: compileRewardFunction({ name: `f${index}`, code }, index),
      index,
      line: 1,
    }));
    const extra = { completionIds: [[1, 2], [3]], finished: [false, true] };
    expect(await runCompiled(fns, ['p', 'q'], ['a', 'b'], extra)).toEqual([
      [0, 0],
      [20, 11],
    ]);
    expect(extra).toEqual({ completionIds: [[1, 2], [3]], finished: [false, true] });
  });

  it("a function reward source hands each completion's finished flag to the functions (Node: in-process)", async () => {
    const runner = new RewardFunctionRunner();
    const source = functionRewardSource([{ name: 'fin', code: FINISHED_CODE, weight: 1 }], runner);
    const batch = [true, false, false, true].map((finished, i) => ({
      prompt: 'p',
      promptIds: [],
      responseIds: [i],
      text: 'x.',
      finished,
    }));
    expect(await source.score(batch)).toEqual([1, 0, 0, 1]);
    // A batch that does not say counts every completion as finished.
    expect(await runner.run([{ name: 'fin', code: FINISHED_CODE }], { prompts: ['p'], completions: ['x'] })).toEqual([
      [1],
    ]);
    runner.dispose();
  });

  it('the worker path carries finished through the message to the worker and back', async () => {
    const seen: RewardBatchMessage[] = [];
    class EchoWorker extends EventTarget {
      private evaluator = new RewardEvaluator();
      constructor() {
        super();
        queueMicrotask(() => this.dispatchEvent(new MessageEvent('message', { data: { id: 0, ok: true, parts: [] } })));
      }
      postMessage(msg: RewardBatchMessage) {
        seen.push(structuredClone(msg));
        void this.evaluator
          .reply(structuredClone(msg))
          .then((data) => this.dispatchEvent(new MessageEvent('message', { data })));
      }
      terminate() {}
    }
    const runner = new RewardFunctionRunner(1000, () => new EchoWorker() as unknown as Worker);
    const fn = { name: 'fin', code: FINISHED_CODE };
    const batch = { prompts: ['p', 'q', 'r'], completions: ['a', 'b', 'c'], finished: [false, true, false] };
    expect(await runner.run([fn], batch)).toEqual([[0, 1, 0]]);
    expect(seen[0].finished).toEqual([false, true, false]);
    expect(await runner.run([fn], { prompts: ['p'], completions: ['a'] })).toEqual([[1]]);
    expect(seen[1].finished).toEqual([true]);
    runner.dispose();
  });
});

describe('weights and metrics', () => {
  it('sums parts with their weights (TRL reward_weights)', () => {
    expect(
      combineWeighted(
        [
          [1, 0, 1],
          [0.5, 0.5, -1],
        ],
        [2, -1],
      ),
    ).toEqual([1.5, -0.5, 3]);
    expect(() => combineWeighted([[1]], [1, 2])).toThrow(RangeError);
  });

  it('logs each part as rewards/<name>/mean|std with a Bessel-corrected std', () => {
    const m = rewardPartMetrics(
      ['fmt', 'len'],
      [
        [1, 0, 1, 0],
        [2, 2, 2, 2],
      ],
    );
    expect(m['rewards/fmt/mean']).toBe(0.5);
    expect(m['rewards/fmt/std']).toBeCloseTo(Math.sqrt(1 / 3), 12);
    expect(m['rewards/len/std']).toBe(0);
    expect(meanStd([3]).std).toBe(0);
  });

  it('checks the specs of a run', () => {
    expect(checkSpecs([])).toMatch(/at least one/);
    expect(checkSpecs([{ name: 'a b', code: 'x', weight: 1 }])).toMatch(/letters, digits/);
    expect(
      checkSpecs([
        { name: 'a', code: 'x', weight: 1 },
        { name: 'a', code: 'y', weight: 1 },
      ]),
    ).toMatch(/named "a"/);
    expect(checkSpecs([{ name: 'a', code: 'x', weight: NaN }])).toMatch(/weight/);
    expect(checkSpecs([{ name: 'a', code: 'x', weight: 1 }])).toBeNull();
  });

  it('a weighted source scores a batch and keeps each part for the logs', async () => {
    const source = functionRewardSource(
      [
        { name: 'bang', code: EXAMPLES[0].code, weight: 2 },
        { name: 'len', code: 'const reward = (p, c) => c.map((x) => x.length);', weight: 0.5 },
      ],
      new RewardFunctionRunner(),
    );
    const batch = ['hi!', 'no'].map((text) => ({ prompt: 'p', promptIds: [], responseIds: [1], text, finished: true }));
    expect(await source.score(batch)).toEqual([2 + 1.5, 1]);
    expect(source.lastParts()).toEqual([
      { name: 'bang', scores: [1, 0] },
      { name: 'len', scores: [3, 2] },
    ]);
  });
});

describe('shared links', () => {
  it('round-trips UTF-8 code through base64url', () => {
    const text = 'const w = "café ✓ 日本";\n// ends';
    const enc = encodeCode(text);
    expect(enc).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCode(enc)).toBe(text);
    const specs = [{ name: 'fmt', code: EXAMPLES[0].code, weight: 1.5 }];
    expect(specsFromLink(specsToLink(specs)!)).toEqual(specs);
  });

  it('refuses a cut, edited or too long link', () => {
    const link = specsToLink([{ name: 'fmt', code: EXAMPLES[0].code, weight: 1 }])!;
    expect(() => specsFromLink(link.slice(0, 20))).toThrow(/could not be read/);
    expect(() => specsFromLink('%%%')).toThrow(/could not be read/);
    expect(() => specsFromLink('A'.repeat(9000))).toThrow(/at most 8000/);
    expect(specsToLink([{ name: 'big', code: 'x'.repeat(19_000), weight: 1 }])).toBeNull();
  });
});

describe('lock-down', () => {
  it('takes the blocked names off an object and its prototypes', () => {
    const proto = { fetch: () => 'net', indexedDB: {} };
    const scope = Object.create(proto) as Record<string, unknown>;
    scope.caches = {};
    scope.navigator = Object.create({ storage: {} });
    scope.kept = 1;
    lockDown(scope);
    expect(scope.fetch).toBeUndefined();
    expect(scope.indexedDB).toBeUndefined();
    expect(scope.caches).toBeUndefined();
    expect((scope.navigator as Record<string, unknown>).storage).toBeUndefined();
    expect(scope.kept).toBe(1);
    expect(() => {
      'use strict';
      scope.fetch = () => 'back';
    }).toThrow(TypeError);
  });
});

describe('runner time limit (a fake worker: Node has none)', () => {
  /** Answers like the real worker, except that a batch whose code says HANG never answers. */
  class FakeWorker extends EventTarget {
    static made: FakeWorker[] = [];
    terminated = false;
    private evaluator = new RewardEvaluator();
    constructor() {
      super();
      FakeWorker.made.push(this);
      queueMicrotask(() => this.reply({ id: 0, ok: true, parts: [] }));
    }
    private reply(data: unknown) {
      if (!this.terminated) this.dispatchEvent(new MessageEvent('message', { data }));
    }
    postMessage(msg: RewardBatchMessage) {
      if (msg.functions.some((f) => f.code.includes('HANG'))) {
        this.reply({ id: msg.id, started: msg.functions.findIndex((f) => f.code.includes('HANG')) });
        return;
      }
      void this.evaluator.reply(msg).then((r) => this.reply(r));
    }
    terminate() {
      this.terminated = true;
    }
  }

  it('a batch past the limit fails naming the function that was running, and the next batch gets a fresh worker', async () => {
    FakeWorker.made = [];
    const runner = new RewardFunctionRunner(50, () => new FakeWorker() as unknown as Worker);
    const ok = { name: 'ok', code: 'const reward = (p, c) => c.map(() => 1);' };
    const hang = { name: 'slow', code: '// HANG\n\nfunction reward(p, c) {\n  while (true) {}\n}' };
    const batch = { prompts: ['p', 'q'], completions: ['a', 'b'] };
    expect(await runner.run([ok], batch)).toEqual([[1, 1]]);
    const err = await runner.run([ok, hang], batch).catch((e) => e);
    expect(err).toBeInstanceOf(RewardFunctionError);
    expect(err.failure).toBe('timeout');
    expect(err.message).toBe(
      'Reward function "slow", line 3: did not finish a batch of 2 completions within 0.05 s (an endless loop?); it was stopped.',
    );
    expect(FakeWorker.made[0].terminated).toBe(true);
    expect(await runner.run([ok], batch)).toEqual([[1, 1]]);
    expect(FakeWorker.made.length).toBe(2);
    expect(runner.starts).toBe(2);
    runner.dispose();
  });
});
