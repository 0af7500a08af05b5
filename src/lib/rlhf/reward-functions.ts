/**
 * Reward functions the user writes in JavaScript ("verifiable rewards"): the pure parts, shared
 * by the reward worker (src/workers/reward-fn.worker.ts), its runner in the engine
 * (src/lib/engine/reward-fn-runner.ts) and the Train page.
 *
 * The shape is TRL's reward function (`trl/trainer/grpo_trainer.py`, `reward_funcs`):
 * `(prompts: string[], completions: string[]) => number[]`, one score per completion; several
 * functions are summed with weights (TRL `reward_weights`) and each is logged as
 * `rewards/<name>/mean` and `rewards/<name>/std` (std Bessel-corrected, as TRL's `nanstd`).
 *
 * Convention: the user's text is a small script that defines a function named `reward`,
 * `function reward(prompts, completions, extra) { … }` or `const reward = (prompts, completions) => …`,
 * with any helpers it likes. It runs in strict mode. A third argument carries what TRL passes as
 * keyword arguments: `{ completionIds: number[][], finished: boolean[] }`: the token ids (for
 * limits in tokens) and, per completion, whether it ended by itself (end-of-text) or was cut off
 * by the length limit (what TRL's `completion_mask` / `is_eos` tell its trainer; a rule such as
 * "ends with !" can then refuse a completion that only ends that way because the cut fell
 * there). A result must be an array of finite numbers, one per completion (TRL's `None` is
 * refused: say 0).
 *
 * Errors name the function and the line of the user's text: a runtime error's line comes from
 * its stack (the code is compiled with a `//# sourceURL`), a syntax error's from compiling
 * growing prefixes of the text (V8 reports no position for them; a prefix that is merely
 * unfinished fails with "Unexpected end of input", a real error fails at its own line).
 *
 * Ready examples follow `EXAMPLES` below; the over-long penalty is DAPO's soft overlong
 * punishment (Yu et al. 2025, "DAPO: An Open-Source LLM Reinforcement Learning System at Scale",
 * eq. 13), as TRL's `get_soft_overlong_punishment(max_completion_len, soft_punish_cache)`.
 */

/** One reward function of a run: a name for logs and messages, the code, its weight in the sum. */
export interface RewardFunctionSpec {
  name: string;
  code: string;
  weight: number;
}

/** Longest code of one function, in characters (also what a shared link carries). */
export const MAX_REWARD_CODE_CHARS = 20_000;
/** Most functions in one run. */
export const MAX_REWARD_FUNCTIONS = 8;
/** Default time one batch may take, all functions together, before the worker is stopped. */
export const REWARD_TIME_LIMIT_MS = 3000;

export type RewardFailure = 'syntax' | 'missing' | 'exception' | 'length' | 'value' | 'timeout' | 'setup';

/** A reward function failed: `fn` is its name, `line` the line of the user's text (1-based) when known. */
export class RewardFunctionError extends Error {
  override name = 'RewardFunctionError';
  constructor(
    message: string,
    readonly fn: string = '',
    readonly line: number | null = null,
    readonly failure: RewardFailure = 'exception',
  ) {
    super(message);
  }
}

/** "Reward function "x", line 3: …" */
export function failureMessage(fn: string, line: number | null, what: string): string {
  return `Reward function "${fn}"${line ? `, line ${line}` : ''}: ${what.trim().replace(/[.\s]+$/, '')}.`;
}

function fail(fn: string, line: number | null, what: string, failure: RewardFailure): RewardFunctionError {
  return new RewardFunctionError(failureMessage(fn, line, what), fn, line, failure);
}

/** Why the specs cannot make a run, or null. */
export function checkSpecs(specs: RewardFunctionSpec[]): string | null {
  if (!Array.isArray(specs) || !specs.length) return 'Add at least one reward function.';
  if (specs.length > MAX_REWARD_FUNCTIONS) return `At most ${MAX_REWARD_FUNCTIONS} reward functions.`;
  const names = new Set<string>();
  for (const s of specs) {
    if (typeof s?.name !== 'string' || !/^[A-Za-z0-9_-]{1,40}$/.test(s.name))
      return `Name reward functions with 1 to 40 letters, digits, _ or - (got "${String(s?.name).slice(0, 40)}").`;
    if (names.has(s.name)) return `Two reward functions are named "${s.name}"; names must differ.`;
    names.add(s.name);
    if (typeof s.code !== 'string' || !s.code.trim()) return `Reward function "${s.name}" has no code.`;
    if (s.code.length > MAX_REWARD_CODE_CHARS)
      return `Reward function "${s.name}" is ${s.code.length} characters long; at most ${MAX_REWARD_CODE_CHARS}.`;
    if (typeof s.weight !== 'number' || !Number.isFinite(s.weight))
      return `The weight of reward function "${s.name}" must be a number.`;
  }
  return null;
}

// ------------------------------------------------------------------ compiling

/** The script name a function's code is compiled under (what its stack frames say). */
export function sourceName(index: number): string {
  return `reward-fn-${index}.js`;
}

/** Lines the wrapper puts before the user's first line. */
const WRAP_LINES = 1;

/** Messages of a prefix that is unfinished, not wrong (V8). */
const UNFINISHED = [/unexpected end of input/i, /missing \) after argument list/i, /unterminated template/i];

/**
 * The line of a syntax error in `code` (1-based; null when it compiles): the first prefix of
 * whole lines, compiled as an unclosed function body, that fails other than by being unfinished;
 * when every prefix is merely unfinished, the last line that is not blank (a missing `}`).
 */
export function syntaxErrorLine(code: string, compile: (src: string) => unknown = indirectEval): number | null {
  const lines = code.split('\n');
  const fails = (src: string): Error | null => {
    try {
      compile(src);
      return null;
    } catch (e) {
      return e as Error;
    }
  };
  if (!fails(`(function () {\n${code}\n})`)) return null;
  for (let k = 1; k <= lines.length; k++) {
    const e = fails(`(function () {\n${lines.slice(0, k).join('\n')}`);
    if (e && !(e instanceof SyntaxError)) return null;
    if (e && !UNFINISHED.some((re) => re.test(e.message))) return k;
  }
  let last = lines.length;
  while (last > 1 && !lines[last - 1].trim()) last--;
  return last;
}

/** The user's line of an error thrown by code compiled as `sourceName(index)`, from its stack. */
export function runtimeErrorLine(e: unknown, index: number): number | null {
  const stack = e instanceof Error ? String(e.stack ?? '') : '';
  const name = sourceName(index).replace(/[.]/g, '\\.');
  const m = new RegExp(`${name}:(\\d+)(?::\\d+)?`).exec(stack);
  if (!m) return null;
  const line = Number(m[1]) - WRAP_LINES;
  return line >= 1 ? line : null;
}

function indirectEval(src: string): unknown {
  return (0, eval)(src);
}

export type CompiledReward = (prompts: string[], completions: string[], extra: RewardExtra) => unknown;
/** The third argument of a reward function (see the file header). */
export interface RewardExtra {
  /** Each completion's token ids, end-of-text included when it has one. */
  completionIds: number[][];
  /** Each completion ended with end-of-text (false: the length limit cut it off). */
  finished: boolean[];
}

/**
 * Compile one function's code (indirect eval: the global scope, nothing of ours in reach) and
 * return its `reward`. Throws RewardFunctionError naming the line of a syntax error, of an
 * exception in the script's top level, or saying `reward` is missing.
 */
export function compileRewardFunction(spec: { name: string; code: string }, index: number): CompiledReward {
  const src =
    `(function () { "use strict";\n${spec.code}\n;return typeof reward === "function" ? reward : undefined; })` +
    `\n//# sourceURL=${sourceName(index)}`;
  let make: () => unknown;
  try {
    make = indirectEval(src) as () => unknown;
  } catch (e) {
    if (e instanceof SyntaxError) {
      // "use strict" can make code a syntax error that a plain prefix check accepts (e.g. `with`).
      const line = syntaxErrorLine(spec.code) ?? syntaxErrorLine(spec.code, (s) => indirectEval(`"use strict";${s}`));
      throw fail(spec.name, line, `SyntaxError: ${e.message}`, 'syntax');
    }
    throw fail(spec.name, null, String(e), 'syntax');
  }
  let fn: unknown;
  try {
    fn = make();
  } catch (e) {
    throw fail(spec.name, runtimeErrorLine(e, index), describe(e), 'exception');
  }
  if (typeof fn !== 'function')
    throw fail(
      spec.name,
      null,
      'the code must define a function named reward, e.g. function reward(prompts, completions) { return completions.map(() => 0); }',
      'missing',
    );
  return fn as CompiledReward;
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return `threw ${typeof e === 'string' ? JSON.stringify(e.slice(0, 200)) : String(e)}`;
}

/**
 * Check a function's result: an array (or typed array) of `n` finite numbers. Returns a plain
 * number[]; throws RewardFunctionError saying what is wrong, at `line` (where `reward` is defined).
 */
export function validateScores(fn: string, result: unknown, n: number, line: number | null = null): number[] {
  if (!Array.isArray(result) && !(ArrayBuffer.isView(result) && !(result instanceof DataView)))
    throw fail(
      fn,
      line,
      `it returned ${kindOf(result)}, not an array of ${n} numbers (one per completion)`,
      result === undefined ? 'value' : 'length',
    );
  const arr = Array.from(result as ArrayLike<unknown>);
  if (arr.length !== n)
    throw fail(
      fn,
      line,
      `it returned ${arr.length} scores for ${n} completions (one per completion, in order)`,
      'length',
    );
  for (let i = 0; i < n; i++) {
    const v = arr[i];
    if (typeof v !== 'number') throw fail(fn, line, `score ${i} is ${kindOf(v)}, not a number`, 'value');
    if (!Number.isFinite(v)) throw fail(fn, line, `score ${i} is ${v}; scores must be finite numbers`, 'value');
  }
  return arr as number[];
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'string') return `the text ${JSON.stringify(v.slice(0, 40))}`;
  if (typeof v === 'object') return `an object`;
  return `${typeof v} ${String(v)}`;
}

/** The line where the code defines `reward` (what a wrong result is blamed on), or null. */
export function definitionLine(code: string): number | null {
  const lines = code.split('\n');
  const i = lines.findIndex((l) => /\bfunction\s+reward\s*\(|\b(?:const|let|var)\s+reward\s*=/.test(l));
  return i >= 0 ? i + 1 : null;
}

/** Run already compiled functions on one batch (in-thread; the worker wraps this). */
export async function runCompiled(
  fns: { name: string; fn: CompiledReward; index: number; line: number | null }[],
  prompts: string[],
  completions: string[],
  extra: RewardExtra,
  onStart?: (index: number) => void,
): Promise<number[][]> {
  const out: number[][] = [];
  for (const { name, fn, index, line } of fns) {
    onStart?.(index);
    let result: unknown;
    try {
      // Copies: a function that changes its arguments must not change what the next one sees.
      result = await fn([...prompts], [...completions], {
        completionIds: extra.completionIds.map((r) => [...r]),
        finished: [...extra.finished],
      });
    } catch (e) {
      throw fail(name, runtimeErrorLine(e, index), describe(e), 'exception');
    }
    out.push(validateScores(name, result, completions.length, line));
  }
  return out;
}

// ------------------------------------------------------------------ combining

/** TRL's reward: Σ_f weight_f · r_f per completion. */
export function combineWeighted(parts: number[][], weights: number[]): number[] {
  if (parts.length !== weights.length)
    throw new RangeError(`${parts.length} score lists for ${weights.length} weights`);
  const n = parts[0]?.length ?? 0;
  return Array.from({ length: n }, (_, i) => parts.reduce((sum, p, f) => sum + weights[f] * p[i], 0));
}

/** Mean and Bessel-corrected std (TRL's `nanstd`; 0 for one value). */
export function meanStd(xs: number[]): { mean: number; std: number } {
  const n = xs.length;
  if (!n) return { mean: NaN, std: NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const ss = xs.reduce((a, b) => a + (b - mean) ** 2, 0);
  return { mean, std: n > 1 ? Math.sqrt(ss / (n - 1)) : 0 };
}

/** `rewards/<name>/mean` and `rewards/<name>/std` of each function's scores. */
export function rewardPartMetrics(names: string[], parts: number[][]): Record<string, number> {
  const m: Record<string, number> = {};
  names.forEach((name, f) => {
    const { mean, std } = meanStd(parts[f]);
    m[`rewards/${name}/mean`] = mean;
    m[`rewards/${name}/std`] = std;
  });
  return m;
}

// ------------------------------------------------------------------ shared links

/** UTF-8 text → base64url (no padding). */
export function encodeCode(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** base64url → UTF-8 text; throws RangeError on bad input. */
export function decodeCode(b64: string): string {
  if (!/^[A-Za-z0-9_-]*$/.test(b64)) throw new RangeError('not base64url text');
  const bin = atob(b64.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (b64.length % 4)) % 4));
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

/** Longest `rewardfn` URL value (base64url characters); longer links are refused with a notice. */
export const MAX_LINK_CHARS = 8000;

/** The functions as one URL value: base64url of their JSON; null when too long for a link. */
export function specsToLink(specs: RewardFunctionSpec[]): string | null {
  const text = encodeCode(JSON.stringify(specs.map(({ name, code, weight }) => ({ name, code, weight }))));
  return text.length <= MAX_LINK_CHARS ? text : null;
}

/** The functions of a URL value; throws RangeError saying what is wrong. */
export function specsFromLink(value: string): RewardFunctionSpec[] {
  if (value.length > MAX_LINK_CHARS)
    throw new RangeError(`the reward functions in the link are ${value.length} characters; at most ${MAX_LINK_CHARS}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(decodeCode(value));
  } catch {
    throw new RangeError('the reward functions in the link could not be read (a cut or edited link?)');
  }
  const specs = (Array.isArray(parsed) ? parsed : []).map((s: Record<string, unknown>) => ({
    name: String(s?.name ?? ''),
    code: String(s?.code ?? ''),
    weight: typeof s?.weight === 'number' ? s.weight : NaN,
  }));
  const why = checkSpecs(specs);
  if (why) throw new RangeError(why);
  return specs;
}

// ------------------------------------------------------------------ examples

export interface RewardExample {
  id: string;
  label: string;
  code: string;
}

/** Ready examples to start from (each defines `reward`). */
export const EXAMPLES: readonly RewardExample[] = [
  {
    id: 'format',
    label: 'Format (regular expression)',
    code: `// 1 when the completion matches the format, else 0.
// Here: ends with an exclamation mark.
const FORMAT = /!\\s*$/;

function reward(prompts, completions) {
  return completions.map((c) => (FORMAT.test(c) ? 1 : 0));
}
`,
  },
  {
    id: 'exact',
    label: 'Exact answer',
    code: `// 1 when the first number of the completion is the answer to the prompt's sum
// ("What is 2 + 3?" → 5), else 0; prompts without a sum score 0.
function answerOf(prompt) {
  const m = prompt.match(/(-?\\d+)\\s*\\+\\s*(-?\\d+)/);
  return m ? Number(m[1]) + Number(m[2]) : null;
}

function reward(prompts, completions) {
  return completions.map((c, i) => {
    const answer = answerOf(prompts[i]);
    const given = c.match(/-?\\d+/);
    return answer !== null && given !== null && Number(given[0]) === answer ? 1 : 0;
  });
}
`,
  },
  {
    id: 'overlong',
    label: 'Soft over-long penalty (DAPO)',
    code: `// DAPO's soft overlong punishment (Yu et al. 2025, eq. 13), in tokens:
// 0 up to MAX_LEN - CACHE, then falling linearly to -1 at MAX_LEN, -1 beyond.
const MAX_LEN = 24;
const CACHE = 8;

function reward(prompts, completions, { completionIds }) {
  return completionIds.map((ids) => {
    const n = ids.length;
    if (n <= MAX_LEN - CACHE) return 0;
    if (n <= MAX_LEN) return (MAX_LEN - CACHE - n) / CACHE;
    return -1;
  });
}
`,
  },
  {
    id: 'keyword',
    label: 'Keyword',
    code: `// 1 when the completion mentions the word (whole word, any case), else 0.
const WORD = 'great';

function reward(prompts, completions) {
  const re = new RegExp('\\\\b' + WORD + '\\\\b', 'i');
  return completions.map((c) => (re.test(c) ? 1 : 0));
}
`,
  },
  {
    id: 'length',
    label: 'Length (words)',
    code: `// Closer to TARGET words is better: 0 at the target, -1 at twice or none.
const TARGET = 12;

const reward = (prompts, completions) =>
  completions.map((c) => {
    const words = c.split(/\\s+/).filter(Boolean).length;
    return -Math.min(1, Math.abs(words - TARGET) / TARGET);
  });
`,
  },
  {
    id: 'finished',
    label: 'Finished sentence (not cut off)',
    code: `// 1 when the completion ends by itself with ".", "!" or "?", else 0.
// The third argument's finished[i] is false where the length limit cut completion i
// off, so a cut that happens to fall after a full stop does not count.
function reward(prompts, completions, { finished }) {
  return completions.map((c, i) => (finished[i] && /[.!?]\\s*$/.test(c) ? 1 : 0));
}
`,
  },
];

export const DEFAULT_REWARD_SPECS: readonly RewardFunctionSpec[] = [
  { name: 'format', code: EXAMPLES[0].code, weight: 1 },
];
