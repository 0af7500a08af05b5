/**
 * Prompt sets: the openings the policy continues during feedback and RL.
 *
 * Bundled sets live in `static/prompts/*.json` as
 * `{ "name", "description", "prompts": [ ... ] }`; users can import their own
 * as the same JSON or as prompt-only JSONL (`{"prompt": …}` per line, the TRL
 * prompt-only format).
 */

import { parseJsonl, type LineError } from './jsonl';
import { sentenceEnd } from './messages';

export interface PromptSet {
  name: string;
  description: string;
  prompts: string[];
}

/** Names of the sets bundled in `static/prompts/`. */
export const BUNDLED_PROMPT_SETS = ['reviews', 'stories', 'requests'] as const;

export const MAX_PROMPTS = 10_000;
export const MAX_PROMPT_CHARS = 2_000;

export class PromptSetError extends Error {
  override name = 'PromptSetError';
}

/**
 * What is wrong with one prompt, as the end of a sentence that starts with its name ("is empty",
 * "is 2500 characters long; at most 2000"), or null when it is fine. Checked on the prompt
 * trimmed at the end, as it is kept.
 */
export function promptProblem(p: unknown): string | null {
  if (typeof p !== 'string') return 'is not text';
  const t = p.trimEnd();
  if (t.trim() === '') return 'is empty';
  if (t.length > MAX_PROMPT_CHARS) return `is ${t.length} characters long; at most ${MAX_PROMPT_CHARS}`;
  if (t.includes('\u0000')) return 'contains a NUL character';
  return null;
}

/**
 * Validate a prompt set (parsed JSON or its text). Prompts are trimmed at the
 * end only (a leading space can matter to a BPE tokenizer, a trailing one
 * rarely helps), blank ones are refused, duplicates are dropped silently.
 * Throws `PromptSetError` saying what is wrong.
 */
export function parsePromptSet(json: unknown): PromptSet {
  let v = json;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v.replace(/^\ufeff/, ''));
    } catch (e) {
      throw new PromptSetError(`Prompt set is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new PromptSetError('Prompt set must be a JSON object with "name", "description" and "prompts".');
  }
  const o = v as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name.trim() === '') throw new PromptSetError('Prompt set needs a "name".');
  if (o.description !== undefined && typeof o.description !== 'string') {
    throw new PromptSetError('"description" must be text.');
  }
  if (!Array.isArray(o.prompts)) throw new PromptSetError('"prompts" must be a list of texts.');
  if (o.prompts.length === 0) throw new PromptSetError('"prompts" is empty.');
  if (o.prompts.length > MAX_PROMPTS) {
    throw new PromptSetError(`Too many prompts (${o.prompts.length}); at most ${MAX_PROMPTS}.`);
  }
  const prompts: string[] = [];
  const seen = new Set<string>();
  o.prompts.forEach((p, i) => {
    const problem = promptProblem(p);
    if (problem) throw new PromptSetError(`Prompt ${i + 1} ${problem}.`);
    const t = (p as string).trimEnd();
    if (!seen.has(t)) {
      seen.add(t);
      prompts.push(t);
    }
  });
  return { name: o.name.trim(), description: typeof o.description === 'string' ? o.description : '', prompts };
}

/**
 * A prompt set from prompt-only JSONL. Every line is checked as `parsePromptSet` checks a prompt
 * (the errors name the line). With the default all-or-nothing policy, any bad line gives
 * `set: null` and the errors; with 'valid-lines' the good lines make the set.
 */
export function promptSetFromJsonl(
  input: string | Uint8Array,
  name: string,
  opts: { policy?: 'all-or-nothing' | 'valid-lines'; description?: string } = {},
): { set: PromptSet | null; errors: LineError[] } {
  const res = parseJsonl(input, 'prompt', { policy: 'valid-lines' });
  const { prompts, errors } = checkPromptRows(res.records, res.lines);
  const all = [...res.errors, ...errors].sort((a, b) => a.line - b.line);
  if (prompts.length === 0 || (all.length > 0 && opts.policy !== 'valid-lines')) return { set: null, errors: all };
  try {
    const set = parsePromptSet({ name, description: opts.description ?? '', prompts });
    return { set, errors: all };
  } catch (e) {
    return { set: null, errors: [...all, { line: 0, reason: sentenceEnd((e as Error).message) }] };
  }
}

/** The prompts of prompt-only rows that `parsePromptSet` will take, and an error on the line of each other. */
export function checkPromptRows(
  rows: readonly { prompt: string }[],
  lines: readonly number[],
): { prompts: string[]; lines: number[]; errors: LineError[] } {
  const prompts: string[] = [];
  const kept: number[] = [];
  const errors: LineError[] = [];
  rows.forEach((r, i) => {
    const problem = promptProblem(r.prompt);
    if (problem) errors.push({ line: lines[i] ?? 0, reason: `"prompt" ${problem}` });
    else {
      prompts.push(r.prompt);
      kept.push(lines[i] ?? 0);
    }
  });
  return { prompts, lines: kept, errors };
}
