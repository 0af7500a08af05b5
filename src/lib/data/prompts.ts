/**
 * Prompt sets: the openings the policy continues during feedback and RL.
 *
 * Bundled sets live in `static/prompts/*.json` as
 * `{ "name", "description", "prompts": [ ... ] }`; users can import their own
 * as the same JSON or as prompt-only JSONL (`{"prompt": …}` per line, the TRL
 * prompt-only format).
 */

import { parseJsonl, type LineError } from './jsonl';

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
    if (typeof p !== 'string') throw new PromptSetError(`Prompt ${i + 1} is not text.`);
    const t = p.trimEnd();
    if (t.trim() === '') throw new PromptSetError(`Prompt ${i + 1} is empty.`);
    if (t.length > MAX_PROMPT_CHARS) {
      throw new PromptSetError(`Prompt ${i + 1} is ${t.length} characters long; at most ${MAX_PROMPT_CHARS}.`);
    }
    if (t.includes('\u0000')) throw new PromptSetError(`Prompt ${i + 1} contains a NUL character.`);
    if (!seen.has(t)) {
      seen.add(t);
      prompts.push(t);
    }
  });
  return { name: o.name.trim(), description: typeof o.description === 'string' ? o.description : '', prompts };
}

/**
 * A prompt set from prompt-only JSONL. With the default all-or-nothing policy,
 * any bad line gives `set: null` and the errors.
 */
export function promptSetFromJsonl(
  input: string | Uint8Array,
  name: string,
  opts: { policy?: 'all-or-nothing' | 'valid-lines'; description?: string } = {},
): { set: PromptSet | null; errors: LineError[] } {
  const res = parseJsonl(input, 'prompt', { policy: opts.policy });
  if (res.records.length === 0) return { set: null, errors: res.errors };
  try {
    const set = parsePromptSet({
      name,
      description: opts.description ?? '',
      prompts: res.records.map((r) => r.prompt),
    });
    return { set, errors: res.errors };
  } catch (e) {
    return { set: null, errors: [...res.errors, { line: 0, reason: (e as Error).message }] };
  }
}
