/**
 * JSONL import and export.
 *
 * TRL formats: exactly the columns TRL's trainers read from
 * `datasets.load_dataset("json", data_files="file.jsonl")` (standard, not
 * conversational; see https://huggingface.co/docs/trl/dataset_formats):
 *
 * | kind              | keys                                   | TRL trainer                  |
 * | ----------------- | -------------------------------------- | ---------------------------- |
 * | preference        | prompt, chosen, rejected (+ margin)    | RewardTrainer, DPOTrainer    |
 * | unpaired          | prompt, completion, label (boolean)    | KTOTrainer                   |
 * | prompt            | prompt                                 | PPO / GRPO / RLOO (prompts)  |
 * | prompt-completion | prompt, completion                     | SFTTrainer                   |
 *
 * Native format: a header line `{"format":"rlhf-playground","version":1}`, then
 * one `PreferenceRecord` or `Demonstration` per line (a record has `mode`, a
 * demonstration has `completion`). Re-imports to identical records.
 *
 * Import never renders anything: HTML or `<script>` in a text is just text
 * (the UI must show it as text, never as markup).
 */

import {
  validateDemonstration,
  validateRecord,
  recordsToPairs,
  SCHEMA_VERSION,
  newId,
  type Demonstration,
  type PreferenceRecord,
  type TrainingPair,
  type Annotator,
  type SamplingSettings,
} from './records';

export const NATIVE_FORMAT = 'rlhf-playground';
/** Version of the native file layout (header + record lines); follows the record `SCHEMA_VERSION`. */
export const NATIVE_VERSION = SCHEMA_VERSION;
/** Lines longer than this (bytes of UTF-8) are refused without being parsed. */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;
/** At most this many errors are listed; `errorCount` has the total. */
export const MAX_LISTED_ERRORS = 500;

export type JsonlKind = 'preference' | 'unpaired' | 'prompt' | 'prompt-completion' | 'native';

export interface TrlPreferenceRow {
  prompt: string;
  chosen: string;
  rejected: string;
  margin?: number;
}
export interface TrlUnpairedRow {
  prompt: string;
  completion: string;
  label: boolean;
}
export interface TrlPromptRow {
  prompt: string;
}
export interface TrlPromptCompletionRow {
  prompt: string;
  completion: string;
}
export type NativeItem = PreferenceRecord | Demonstration;

export interface JsonlRowTypes {
  preference: TrlPreferenceRow;
  unpaired: TrlUnpairedRow;
  prompt: TrlPromptRow;
  'prompt-completion': TrlPromptCompletionRow;
  native: NativeItem;
}

/** Shown by the export dialog: how feedback that is not a clean pair becomes TRL rows. */
export const TRL_MAPPING_NOTES = `How your feedback becomes TRL data
• Preference (prompt, chosen, rejected) — for RewardTrainer and DPOTrainer:
  – A / B: one row, the picked response is "chosen".
  – Tie, both bad, skip: no row (a tie has no direction; "both bad" does not say which is better).
  – Ranking of K: every pair, K·(K−1)/2 rows, the higher-ranked response is "chosen".
  – Rating 1–7: a row for each two responses with different ratings; with margins on,
    "margin" = the rating difference (RewardTrainer adds it to the loss), and rows
    from other modes get margin 0 so every row has the column.
  – Edit: your edited text is "chosen", the original "rejected".
• Unpaired (prompt, completion, label) — for KTOTrainer:
  – A / B: picked → true, the other → false. Both bad → both false. Tie, skip → no row.
  – Ranking: top half → true, bottom half → false (the middle one of an odd K is left out).
  – Rating: 5–7 → true, 1–3 → false, 4 → left out; a response flagged off-topic,
    repetitive or offensive → false whatever its rating.
  – Edit: edited → true, original → false.
• SFT (prompt, completion): your demonstrations, written or from edits.
• Prompts (prompt): the prompt list, for PPO / GRPO / RLOO.
Identical responses make no pair. The native format keeps everything, for re-import here.`;

// ---------------------------------------------------------------------------
// Export

/**
 * `JSON.stringify`, plus escaping U+2028/U+2029: valid JSON either way, but
 * tools that split lines with Unicode rules (Python's `str.splitlines`) would
 * break a row in two.
 */
function line(value: unknown): string {
  return JSON.stringify(value)
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function lines(rows: unknown[]): string {
  return rows.map((r) => line(r) + '\n').join('');
}

/**
 * TRL preference JSONL from records (see `TRL_MAPPING_NOTES`). With
 * `includeMargin` (default true) and at least one pair with a margin, every row
 * has `margin` (0 where the feedback had none): a column missing from some rows
 * would load as null, which RewardTrainer cannot use.
 */
export function toTrlPreferenceJsonl(
  records: readonly PreferenceRecord[],
  opts: { includeMargin?: boolean } = {},
): string {
  return pairsToTrlPreferenceJsonl(recordsToPairs(records), opts);
}

export function pairsToTrlPreferenceJsonl(
  pairs: readonly TrainingPair[],
  opts: { includeMargin?: boolean } = {},
): string {
  const withMargin = (opts.includeMargin ?? true) && pairs.some((p) => p.margin !== undefined);
  return lines(
    pairs.map((p) =>
      withMargin
        ? { prompt: p.prompt, chosen: p.chosen, rejected: p.rejected, margin: p.margin ?? 0 }
        : { prompt: p.prompt, chosen: p.chosen, rejected: p.rejected },
    ),
  );
}

/** KTO-style unpaired rows from one record (see `TRL_MAPPING_NOTES`). */
export function toUnpairedRows(record: PreferenceRecord): TrlUnpairedRow[] {
  const { prompt, responses } = record;
  const row = (completion: string, label: boolean): TrlUnpairedRow => ({ prompt, completion, label });
  switch (record.mode) {
    case 'pairwise':
      if (record.label === 'A') return [row(responses[0].text, true), row(responses[1].text, false)];
      if (record.label === 'B') return [row(responses[1].text, true), row(responses[0].text, false)];
      if (record.label === 'both-bad') return [row(responses[0].text, false), row(responses[1].text, false)];
      return [];
    case 'ranking': {
      const { order } = record.label;
      const half = Math.floor(order.length / 2);
      const top = order.slice(0, half).map((i) => row(responses[i].text, true));
      const bottom = order.slice(order.length - half).map((i) => row(responses[i].text, false));
      return [...top, ...bottom];
    }
    case 'rating': {
      const out: TrlUnpairedRow[] = [];
      record.label.ratings.forEach((r, i) => {
        const f = record.label.flags[i];
        if (f.offTopic || f.repetitive || f.offensive || r <= 3) out.push(row(responses[i].text, false));
        else if (r >= 5) out.push(row(responses[i].text, true));
      });
      return out;
    }
    case 'edit':
      if (record.label.edited === responses[0].text) return [row(record.label.edited, true)];
      return [row(record.label.edited, true), row(responses[0].text, false)];
  }
}

export function toTrlUnpairedJsonl(records: readonly PreferenceRecord[]): string {
  return lines(records.flatMap(toUnpairedRows));
}

/** Prompt-only rows; duplicates are written once. */
export function toTrlPromptJsonl(prompts: readonly string[]): string {
  return lines([...new Set(prompts)].map((prompt) => ({ prompt })));
}

/** SFT rows from demonstrations. */
export function toTrlSftJsonl(demos: readonly Pick<Demonstration, 'prompt' | 'completion'>[]): string {
  return lines(demos.map((d) => ({ prompt: d.prompt, completion: d.completion })));
}

/** Full-fidelity export: header line, then records, then demonstrations. */
export function toNativeJsonl(data: {
  preferences?: readonly PreferenceRecord[];
  demonstrations?: readonly Demonstration[];
}): string {
  const header = { format: NATIVE_FORMAT, version: NATIVE_VERSION, exportedAt: new Date().toISOString() };
  return lines([header, ...(data.preferences ?? []), ...(data.demonstrations ?? [])]);
}

// ---------------------------------------------------------------------------
// Import

export interface LineError {
  /** 1-based line number in the file. */
  line: number;
  reason: string;
}

export interface ParseOptions {
  /** 'all-or-nothing' (default): any error → no records. 'valid-lines': keep the good lines. */
  policy?: 'all-or-nothing' | 'valid-lines';
  maxLineBytes?: number;
}

export interface ParseResult<T> {
  records: T[];
  /** The 1-based line of each record in `records`. */
  lines: number[];
  errors: LineError[];
  /** Total number of errors (only the first `MAX_LISTED_ERRORS` are listed). */
  errorCount: number;
  /** Non-blank lines read (header included). */
  linesRead: number;
  /** True when there were no errors. */
  ok: boolean;
}

class LineProblem extends Error {}

type Obj = Record<string, unknown>;

function asObject(v: unknown): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new LineProblem(
      `expected a JSON object, got ${Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v}`,
    );
  }
  return v as Obj;
}

function requireText(o: Obj, key: string): string {
  if (!(key in o)) throw new LineProblem(`missing "${key}"`);
  const v = o[key];
  if (typeof v !== 'string') throw new LineProblem(`"${key}" must be a string, got ${v === null ? 'null' : typeof v}`);
  if (v.trim() === '') throw new LineProblem(`"${key}" is empty`);
  return v;
}

function onlyKeys(o: Obj, allowed: string[]): void {
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  if (extra.length)
    throw new LineProblem(`unexpected key${extra.length > 1 ? 's' : ''} ${extra.map((k) => `"${k}"`).join(', ')}`);
}

interface RowParser<T> {
  parse(o: Obj): T;
  /** Key for duplicate detection. */
  key(row: T): string;
}

const PARSERS: { [K in Exclude<JsonlKind, 'native'>]: RowParser<JsonlRowTypes[K]> } = {
  preference: {
    parse(o) {
      onlyKeys(o, ['prompt', 'chosen', 'rejected', 'margin']);
      const row: TrlPreferenceRow = {
        prompt: requireText(o, 'prompt'),
        chosen: requireText(o, 'chosen'),
        rejected: requireText(o, 'rejected'),
      };
      if (o.margin !== undefined) {
        if (typeof o.margin !== 'number' || !Number.isFinite(o.margin))
          throw new LineProblem('"margin" must be a number');
        row.margin = o.margin;
      }
      if (row.chosen === row.rejected) throw new LineProblem('"chosen" and "rejected" are the same text');
      return row;
    },
    key: (r) => JSON.stringify([r.prompt, r.chosen, r.rejected]),
  },
  unpaired: {
    parse(o) {
      onlyKeys(o, ['prompt', 'completion', 'label']);
      const prompt = requireText(o, 'prompt');
      const completion = requireText(o, 'completion');
      if (!('label' in o)) throw new LineProblem('missing "label"');
      if (typeof o.label !== 'boolean') throw new LineProblem('"label" must be true or false');
      return { prompt, completion, label: o.label };
    },
    key: (r) => JSON.stringify([r.prompt, r.completion, r.label]),
  },
  prompt: {
    parse(o) {
      onlyKeys(o, ['prompt']);
      return { prompt: requireText(o, 'prompt') };
    },
    key: (r) => r.prompt,
  },
  'prompt-completion': {
    parse(o) {
      onlyKeys(o, ['prompt', 'completion']);
      return { prompt: requireText(o, 'prompt'), completion: requireText(o, 'completion') };
    },
    key: (r) => JSON.stringify([r.prompt, r.completion]),
  },
};

function parseNativeItem(o: Obj): NativeItem {
  if (!('mode' in o) && !('completion' in o)) {
    throw new LineProblem('neither a preference record (no "mode") nor a demonstration (no "completion")');
  }
  try {
    return 'mode' in o ? validateRecord(o) : validateDemonstration(o);
  } catch (e) {
    throw new LineProblem((e as Error).message);
  }
}

function checkNativeHeader(o: Obj): void {
  if (o.format !== NATIVE_FORMAT) {
    throw new LineProblem(`not an RLHF Playground export: the first line must be {"format":"${NATIVE_FORMAT}",…}`);
  }
  if (typeof o.version !== 'number' || !Number.isInteger(o.version) || o.version < 1) {
    throw new LineProblem('header "version" must be a whole number');
  }
  if (o.version > NATIVE_VERSION) {
    throw new LineProblem(
      `made by a newer version of the app (format ${o.version}, this app reads up to ${NATIVE_VERSION})`,
    );
  }
}

const UTF8_FATAL = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** UTF-8 byte length of a string, without allocating. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

interface RawLine {
  line: number;
  /** The text, or null when it could not be decoded / is too long. */
  text: string | null;
  problem?: string;
}

/** Split the input into lines (LF or CRLF), strip a leading BOM, check size and encoding per line. */
function* splitLines(input: string | Uint8Array, maxBytes: number): Generator<RawLine> {
  if (typeof input === 'string') {
    let start = input.charCodeAt(0) === 0xfeff ? 1 : 0;
    let lineNo = 0;
    while (start <= input.length) {
      let end = input.indexOf('\n', start);
      if (end === -1) end = input.length;
      lineNo++;
      const len = end - start;
      // A JS string's UTF-8 length is at least its length in UTF-16 units.
      if (len > maxBytes || (len * 3 > maxBytes && utf8Length(input.slice(start, end)) > maxBytes)) {
        yield { line: lineNo, text: null, problem: tooLong(maxBytes) };
      } else {
        let text = input.slice(start, end);
        if (text.endsWith('\r')) text = text.slice(0, -1);
        yield { line: lineNo, text };
      }
      if (end === input.length) break;
      start = end + 1;
    }
    return;
  }
  const bytes = input;
  let start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  let lineNo = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    lineNo++;
    let stop = end;
    if (stop > start && bytes[stop - 1] === 0x0d) stop--;
    if (stop - start > maxBytes) {
      yield { line: lineNo, text: null, problem: tooLong(maxBytes) };
    } else {
      try {
        yield { line: lineNo, text: UTF8_FATAL.decode(bytes.subarray(start, stop)) };
      } catch {
        yield { line: lineNo, text: null, problem: 'not valid UTF-8 text (binary data?)' };
      }
    }
    if (end === bytes.length) break;
    start = end + 1;
  }
}

function tooLong(maxBytes: number): string {
  return `line is longer than ${formatBytes(maxBytes)}; not read`;
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024
    ? `${+(n / 1024 / 1024).toFixed(1)} MB`
    : n >= 1024
      ? `${+(n / 1024).toFixed(1)} KB`
      : `${n} bytes`;
}

/**
 * Parse and validate a JSONL file of the given kind. `input` is the file's text
 * or bytes (`await file.text()` or `new Uint8Array(await file.arrayBuffer())`;
 * bytes give exact invalid-UTF-8 detection).
 *
 * Checks every line: invalid JSON, not an object, missing or extra keys, wrong
 * types, empty strings, lines over `maxLineBytes` (not parsed), NUL bytes and
 * U+FFFD replacement characters (a sign of binary or mis-decoded data),
 * duplicates (same content, or same id for native; the later line is the error).
 * A BOM at the start is dropped, CRLF line ends are accepted, blank lines are
 * skipped. With the default policy ('all-or-nothing') any error gives no records.
 */
export function parseJsonl<K extends JsonlKind>(
  input: string | Uint8Array,
  kind: K,
  opts: ParseOptions = {},
): ParseResult<JsonlRowTypes[K]> {
  const maxBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const records: JsonlRowTypes[K][] = [];
  const lines: number[] = [];
  const errors: LineError[] = [];
  let errorCount = 0;
  let linesRead = 0;
  const seen = new Map<string, number>();
  let headerSeen = false;
  const addError = (line: number, reason: string) => {
    errorCount++;
    if (errors.length < MAX_LISTED_ERRORS) errors.push({ line, reason });
  };

  for (const raw of splitLines(input, maxBytes)) {
    if (raw.text === null) {
      linesRead++;
      addError(raw.line, raw.problem ?? 'unreadable line');
      continue;
    }
    const text = raw.text;
    if (text.trim() === '') continue;
    linesRead++;
    if (text.includes('\u0000')) {
      addError(raw.line, 'contains NUL bytes (binary data?)');
      continue;
    }
    if (text.includes('\ufffd')) {
      addError(raw.line, 'contains U+FFFD replacement characters (binary data or a wrong text encoding?)');
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      addError(raw.line, `invalid JSON (${(e as Error).message})`);
      continue;
    }
    try {
      const o = asObject(value);
      if (kind === 'native') {
        if (!headerSeen) {
          headerSeen = true;
          checkNativeHeader(o);
          continue;
        }
        const item = parseNativeItem(o);
        const key = ('mode' in item ? 'record:' : 'demonstration:') + item.id;
        const first = seen.get(key);
        if (first !== undefined) throw new LineProblem(`duplicate id "${item.id}" (first on line ${first})`);
        seen.set(key, raw.line);
        records.push(item as JsonlRowTypes[K]);
        lines.push(raw.line);
      } else {
        const parser = PARSERS[kind as Exclude<JsonlKind, 'native'>] as RowParser<JsonlRowTypes[K]>;
        const row = parser.parse(o);
        const key = parser.key(row);
        const first = seen.get(key);
        if (first !== undefined) throw new LineProblem(`duplicate of line ${first}`);
        seen.set(key, raw.line);
        records.push(row);
        lines.push(raw.line);
      }
    } catch (e) {
      if (!(e instanceof LineProblem)) throw e;
      addError(raw.line, e.message);
    }
  }
  if (kind === 'native' && !headerSeen && errorCount === 0) {
    addError(1, `empty file: expected a header line {"format":"${NATIVE_FORMAT}","version":${NATIVE_VERSION}}`);
  }
  if (kind !== 'native' && linesRead === 0) addError(1, 'empty file: no JSON lines found');
  const policy = opts.policy ?? 'all-or-nothing';
  const none = errorCount > 0 && policy === 'all-or-nothing';
  return {
    records: none ? [] : records,
    lines: none ? [] : lines,
    errors,
    errorCount,
    linesRead,
    ok: errorCount === 0,
  };
}

/**
 * Guess the kind of a JSONL file from its first lines (text or an array of
 * lines). Returns null when the lines are not JSON objects of a known shape
 * (e.g. TRL's conversational "messages" format, which we do not read).
 */
export function detectKind(firstLines: string | readonly string[]): JsonlKind | null {
  const list = typeof firstLines === 'string' ? firstLines.replace(/^\ufeff/, '').split('\n') : firstLines;
  for (const raw of list.slice(0, 20)) {
    const text = raw.replace(/^\ufeff/, '').trim();
    if (text === '') continue;
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch {
      return null;
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) return null;
    const v = o as Obj;
    if (v.format === NATIVE_FORMAT) return 'native';
    if ('chosen' in v && 'rejected' in v) return 'preference';
    if ('completion' in v && 'label' in v) return 'unpaired';
    if ('completion' in v) return 'prompt-completion';
    if ('prompt' in v) return 'prompt';
    return null;
  }
  return null;
}

/** Read the first `n` lines of a big input cheaply, for `detectKind`. */
export function firstLines(input: string | Uint8Array, n = 5, maxChars = 64 * 1024): string[] {
  const head =
    typeof input === 'string' ? input.slice(0, maxChars) : new TextDecoder().decode(input.subarray(0, maxChars));
  return head.split('\n').slice(0, n);
}

// ---------------------------------------------------------------------------
// Imported TRL rows → app data

export interface ImportMeta {
  annotator?: Annotator;
  modelId?: string;
  checkpointId?: string;
  now?: number;
}

const IMPORTED_SAMPLING: SamplingSettings = { temperature: 1, topK: 0, topP: 1, maxNewTokens: 1 };

/**
 * Preference rows → pairwise records (response A = chosen, label 'A'; token ids
 * empty until tokenised; model/checkpoint 'import'). A row's `margin` is not kept
 * (pairwise records have none); keep the rows themselves to train with margins.
 */
export function preferenceRowsToRecords(rows: readonly TrlPreferenceRow[], meta: ImportMeta = {}): PreferenceRecord[] {
  const now = meta.now ?? Date.now();
  const annotator: Annotator = meta.annotator ?? { name: 'imported', kind: 'human' };
  return rows.map((r) => ({
    id: newId(),
    schemaVersion: SCHEMA_VERSION,
    prompt: r.prompt,
    responses: [
      { text: r.chosen, tokenIds: [] },
      { text: r.rejected, tokenIds: [] },
    ],
    modelId: meta.modelId ?? 'import',
    checkpointId: meta.checkpointId ?? 'import',
    sampling: { ...IMPORTED_SAMPLING },
    seed: 0,
    annotator,
    mode: 'pairwise',
    label: 'A',
    createdAt: now,
    updatedAt: now,
  }));
}

/** Prompt-completion rows → demonstrations (source 'import'). */
export function sftRowsToDemonstrations(rows: readonly TrlPromptCompletionRow[], now = Date.now()): Demonstration[] {
  return rows.map((r) => ({
    id: newId(),
    prompt: r.prompt,
    completion: r.completion,
    source: 'import',
    createdAt: now,
  }));
}

/** Split native items into records and demonstrations. */
export function splitNative(items: readonly NativeItem[]): {
  preferences: PreferenceRecord[];
  demonstrations: Demonstration[];
} {
  const preferences: PreferenceRecord[] = [];
  const demonstrations: Demonstration[] = [];
  for (const it of items) {
    if ('mode' in it) preferences.push(it);
    else demonstrations.push(it);
  }
  return { preferences, demonstrations };
}

/** Bytes of a string as UTF-8 (for tests and for building a `Blob`). */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}
