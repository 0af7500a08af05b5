/**
 * Saved data as the UI sees it: the one connection to IndexedDB (shared by the
 * feedback studio and the Data page), the Data page's list with its filters and
 * pages, counts, edit and delete with undo, import and export.
 *
 * Every write goes through the storage layer and resolves after its transaction
 * commits; a failed write leaves nothing behind and ends as a notice.
 */
import {
  detectKind,
  DEFAULT_MAX_LINE_BYTES,
  firstLines,
  toNativeJsonl,
  toTrlPreferenceJsonl,
  toTrlPromptJsonl,
  toTrlSftJsonl,
  toTrlUnpairedJsonl,
  type JsonlKind,
  type LineError,
} from '../lib/data/jsonl';
import { checkImport, type ImportCheck, type ImportCheckOptions } from '../lib/data/import-check';
import { sentence } from '../lib/data/messages';
import {
  FEEDBACK_MODES,
  PAIRWISE_LABELS,
  newId,
  validateDemonstration,
  validateRecord,
  type Demonstration,
  type FeedbackMode,
  type PairwiseLabel,
  type PreferenceRecord,
} from '../lib/data/records';
import { agreementBetween, type AgreementResult } from '../lib/rlhf/agreement';
import { labellerFromConfig, type LabellerConfig } from '../lib/rlhf/labellers';
import { Rng } from '../lib/model/rng';
import {
  openStores,
  requestPersistentStorage,
  STORES,
  writeTx,
  type PreferenceQuery,
  type Stores,
} from '../lib/storage/db';
import { notices } from './notices.svelte';

// ---------------------------------------------------------------------------
// The database connection

let storesPromise: Promise<Stores> | null = null;

/** The app's stores, opened once. A failed open is retried on the next call. */
export function getStores(): Promise<Stores> {
  storesPromise ??= openStores().catch((e: unknown) => {
    storesPromise = null;
    throw e;
  });
  return storesPromise;
}

let persistAsked = false;

/** Ask once per visit, on the first save, that the browser keep our data under storage pressure. */
export function askPersistence(): void {
  if (persistAsked) return;
  persistAsked = true;
  void requestPersistentStorage();
}

/**
 * Save preference records and demonstrations in one transaction: all of them,
 * or (on any error, a full disk included) none. Resolves after the commit.
 */
export async function saveAll(
  preferences: readonly PreferenceRecord[],
  demonstrations: readonly Demonstration[] = [],
): Promise<void> {
  const prefs = preferences.map((r) => validateRecord(r));
  const demos = demonstrations.map((d) => validateDemonstration(d));
  const s = await getStores();
  askPersistence();
  const what = prefs.length + demos.length === 1 ? 'save the label' : `save ${prefs.length + demos.length} items`;
  await writeTx(s.db, [STORES.preferences, STORES.demonstrations], what, (tx) => {
    const p = tx.objectStore(STORES.preferences);
    const d = tx.objectStore(STORES.demonstrations);
    return Promise.all([...prefs.map((r) => p.add(r)), ...demos.map((x) => d.add(x))]);
  });
  dataState.bump();
}

/** Delete records (and demonstrations) by id in one transaction; resolves after the commit. */
export async function deleteAll(preferenceIds: readonly string[], demonstrationIds: readonly string[] = []) {
  const s = await getStores();
  await writeTx(s.db, [STORES.preferences, STORES.demonstrations], 'undo the label', (tx) =>
    Promise.all([
      ...preferenceIds.map((id) => tx.objectStore(STORES.preferences).delete(id)),
      ...demonstrationIds.map((id) => tx.objectStore(STORES.demonstrations).delete(id)),
    ]),
  );
  dataState.bump();
}

// ---------------------------------------------------------------------------
// Downloads

/** Save a text or a Blob as a file the browser downloads (no network: an object URL). */
export function download(filename: string, content: string | Blob, type = 'application/jsonl'): void {
  const url = URL.createObjectURL(typeof content === 'string' ? new Blob([content], { type }) : content);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export const EXPORT_KINDS = [
  { id: 'native', label: 'Native (everything, re-imports here)', file: 'rlhf-playground' },
  { id: 'preference', label: 'TRL preference (prompt, chosen, rejected)', file: 'preference' },
  { id: 'unpaired', label: 'TRL unpaired / KTO (prompt, completion, label)', file: 'unpaired' },
  { id: 'prompt', label: 'TRL prompt-only (prompt)', file: 'prompts' },
  { id: 'sft', label: 'TRL SFT (prompt, completion)', file: 'sft' },
] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number]['id'];

// ---------------------------------------------------------------------------
// Import

export const IMPORT_KINDS: { id: JsonlKind; label: string }[] = [
  { id: 'native', label: 'Native RLHF Playground export' },
  { id: 'preference', label: 'TRL preference (prompt, chosen, rejected)' },
  { id: 'prompt-completion', label: 'TRL SFT (prompt, completion)' },
  { id: 'prompt', label: 'TRL prompt-only (prompt)' },
  { id: 'unpaired', label: 'TRL unpaired / KTO (prompt, completion, label)' },
];

/** Files bigger than this are refused before reading. */
export const MAX_IMPORT_BYTES = 200 * 1024 * 1024;

export interface ImportPreview {
  fileName: string;
  size: number;
  /** What the file looks like (null: not recognised). */
  detected: JsonlKind | null;
  /** The kind it is read as (the detected one, or the user's pick). */
  kind: JsonlKind | null;
  /** Why the kind could not be recognised. */
  problem: string | null;
  /** Items that can be imported. */
  valid: number;
  errors: LineError[];
  errorCount: number;
  linesRead: number;
}

function kindOfLine(text: string): string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return `line 1: invalid JSON (${(e as Error).message})`;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'line 1: expected a JSON object on each line';
  const keys = Object.keys(v);
  return `line 1: columns ${keys.length ? keys.map((k) => `"${k}"`).join(', ') : '(none)'} match no known format; expected "prompt" with "chosen"/"rejected" or "completion", or a native export header`;
}

/** Why `detectKind` gave up, in words, with the line number. */
function diagnose(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'The file is empty.';
  let start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  let lineNo = 1;
  // The first non-blank line.
  for (;;) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    const len = end - start;
    if (len > DEFAULT_MAX_LINE_BYTES) return `line ${lineNo}: line is longer than 1 MB; not read.`;
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(start, end));
    } catch {
      return `line ${lineNo}: not valid UTF-8 text — is this a binary file?`;
    }
    if (text.includes('\u0000')) return `line ${lineNo}: contains NUL bytes — is this a binary file?`;
    if (text.trim() !== '') return kindOfLine(text.trim()).replace(/^line 1/, `line ${lineNo}`);
    if (end >= bytes.length) return 'The file has no JSON lines.';
    start = end + 1;
    lineNo++;
  }
}

// ---------------------------------------------------------------------------
// The Data page

export type LabelFilter = PairwiseLabel | '';
export type ModeFilter = FeedbackMode | '';

export const PAGE_SIZE = 25;

export class DataState {
  /** Bumped after every write anywhere in the app; the Data page reloads on change. */
  version = $state(0);

  search = $state('');
  annotator = $state('');
  mode = $state<ModeFilter>('');
  label = $state<LabelFilter>('');
  page = $state(0);

  records = $state.raw<PreferenceRecord[]>([]);
  total = $state(0);
  loading = $state(false);
  loadError = $state<string | null>(null);
  countsByLabel = $state.raw<Record<PairwiseLabel, number> | null>(null);
  countsByMode = $state.raw<Record<FeedbackMode, number> | null>(null);
  allCount = $state(0);
  demoCount = $state(0);
  annotatorNames = $state.raw<string[]>([]);

  /** Deleted records, most recent last, for undo. */
  deleted = $state.raw<PreferenceRecord[]>([]);

  preview = $state.raw<ImportPreview | null>(null);
  importing = $state(false);
  private importBytes: Uint8Array | null = null;

  private loadToken = 0;

  bump(): void {
    this.version++;
  }

  get pageCount(): number {
    return Math.max(1, Math.ceil(this.total / PAGE_SIZE));
  }

  query(): PreferenceQuery {
    const q: PreferenceQuery = { offset: this.page * PAGE_SIZE, limit: PAGE_SIZE };
    if (this.search.trim()) q.search = this.search.trim();
    if (this.annotator) q.annotator = this.annotator;
    if (this.mode) q.mode = this.mode;
    if (this.label) q.label = this.label;
    return q;
  }

  /** Load the current page and the counts. Later calls win over earlier ones still running. */
  async refresh(): Promise<void> {
    const token = ++this.loadToken;
    this.loading = true;
    try {
      const s = await getStores();
      const [page, byLabel, byMode, names, all, demos] = await Promise.all([
        s.preferences.list(this.query()),
        s.preferences.countsByLabel(),
        s.preferences.countsByMode(),
        s.preferences.annotatorNames(),
        s.preferences.count(),
        s.demonstrations.count(),
      ]);
      if (token !== this.loadToken) return;
      // A delete can empty the last page: step back to the new last page.
      if (page.records.length === 0 && page.total > 0 && this.page > 0) {
        this.page = Math.max(0, Math.ceil(page.total / PAGE_SIZE) - 1);
        return this.refresh();
      }
      this.records = page.records;
      this.total = page.total;
      this.countsByLabel = byLabel;
      this.countsByMode = byMode;
      this.annotatorNames = names;
      this.allCount = all;
      this.demoCount = demos;
      this.loadError = null;
    } catch (e) {
      if (token !== this.loadToken) return;
      this.loadError = (e as Error).message;
    } finally {
      if (token === this.loadToken) this.loading = false;
    }
  }

  setPage(p: number): void {
    this.page = Math.min(Math.max(0, p), this.pageCount - 1);
  }

  async updateRecord(record: PreferenceRecord): Promise<boolean> {
    try {
      const s = await getStores();
      await s.preferences.update($state.snapshot(record) as PreferenceRecord);
      this.bump();
      return true;
    } catch (e) {
      notices.add('error', (e as Error).message);
      return false;
    }
  }

  async deleteRecord(id: string): Promise<void> {
    try {
      const s = await getStores();
      const old = await s.preferences.delete(id);
      if (old) this.deleted = [...this.deleted, old];
      this.bump();
    } catch (e) {
      notices.add('error', (e as Error).message);
    }
  }

  async undoDelete(): Promise<void> {
    const last = this.deleted.at(-1);
    if (!last) return;
    try {
      const s = await getStores();
      await s.preferences.restore(last);
      this.deleted = this.deleted.slice(0, -1);
      this.bump();
    } catch (e) {
      notices.add('error', (e as Error).message);
    }
  }

  // -------------------------------------------------------------------------
  // Agreement

  async agreement(nameA: string, nameB: string): Promise<AgreementResult | null> {
    try {
      const s = await getStores();
      const [a, b] = await Promise.all(
        [nameA, nameB].map((n) => s.preferences.list({ annotator: n, limit: Number.MAX_SAFE_INTEGER })),
      );
      return agreementBetween([...a.records, ...b.records], nameA, nameB);
    } catch (e) {
      notices.add('error', (e as Error).message);
      return null;
    }
  }

  /**
   * Have a scripted labeller judge the pairwise comparisons `sourceName` judged
   * (the same prompt and texts, in the same positions), so the two can be
   * compared. Comparisons the labeller already judged are left alone. All are
   * saved in one transaction. Returns how many were added.
   */
  async relabel(sourceName: string, name: string, config: LabellerConfig): Promise<number> {
    try {
      const labeller = labellerFromConfig(config);
      const s = await getStores();
      const [src, done] = await Promise.all(
        [sourceName, name].map((n) =>
          s.preferences.list({ annotator: n, mode: 'pairwise', limit: Number.MAX_SAFE_INTEGER }),
        ),
      );
      const key = (r: PreferenceRecord) => JSON.stringify([r.prompt, r.responses[0].text, r.responses[1].text]);
      const seen = new Set(done.records.map(key));
      const rng = new Rng(src.records.length);
      const now = Date.now();
      const out: PreferenceRecord[] = [];
      for (const r of [...src.records].reverse()) {
        if (r.mode !== 'pairwise' || r.label === 'skip' || seen.has(key(r))) continue;
        seen.add(key(r));
        const label = labeller.compare(r.responses[0].text, r.responses[1].text, r.prompt, rng);
        out.push({
          ...r,
          id: newId(),
          annotator: { name, kind: 'labeller', labeller: labeller.config },
          label,
          createdAt: now,
          updatedAt: now,
        });
      }
      if (out.length) await saveAll(out);
      return out.length;
    } catch (e) {
      notices.add('error', (e as Error).message);
      return 0;
    }
  }

  // -------------------------------------------------------------------------
  // Export

  async exportAs(kind: ExportKind, opts: { includeMargin?: boolean } = {}): Promise<number> {
    try {
      const s = await getStores();
      const prefs = (await s.preferences.getAll()).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
      const demos =
        kind === 'native' || kind === 'sft'
          ? (await s.demonstrations.getAll()).sort((a, b) => a.createdAt - b.createdAt)
          : [];
      let text: string;
      switch (kind) {
        case 'native':
          text = toNativeJsonl({ preferences: prefs, demonstrations: demos });
          break;
        case 'preference':
          text = toTrlPreferenceJsonl(prefs, { includeMargin: opts.includeMargin ?? true });
          break;
        case 'unpaired':
          text = toTrlUnpairedJsonl(prefs);
          break;
        case 'prompt':
          text = toTrlPromptJsonl(prefs.map((r) => r.prompt));
          break;
        case 'sft':
          text = toTrlSftJsonl(demos);
          break;
      }
      const rows = text === '' ? 0 : text.split('\n').length - 1;
      const stamp = new Date().toISOString().slice(0, 10);
      const file = EXPORT_KINDS.find((k) => k.id === kind)!.file;
      download(`${file}-${stamp}.jsonl`, text);
      return rows;
    } catch (e) {
      notices.add('error', `Export failed: ${(e as Error).message}`);
      return 0;
    }
  }

  // -------------------------------------------------------------------------
  // Import

  clearImport(): void {
    this.preview = null;
    this.importBytes = null;
  }

  /** Read a file, recognise its kind and check every line; nothing is saved yet. */
  async analyse(file: File, kind?: JsonlKind): Promise<void> {
    if (file.size > MAX_IMPORT_BYTES) {
      this.importBytes = null;
      this.preview = {
        fileName: file.name,
        size: file.size,
        detected: null,
        kind: null,
        problem: `The file is ${(file.size / 1024 / 1024).toFixed(0)} MB; at most ${MAX_IMPORT_BYTES / 1024 / 1024} MB can be imported at once. Split it.`,
        valid: 0,
        errors: [],
        errorCount: 0,
        linesRead: 0,
      };
      return;
    }
    this.importBytes = new Uint8Array(await file.arrayBuffer());
    await this.reanalyse(file.name, file.size, kind);
  }

  /** Check the loaded file again as `kind` (the user overrode the detected kind). */
  async reanalyse(fileName: string, size: number, kind?: JsonlKind): Promise<void> {
    const bytes = this.importBytes;
    if (!bytes) return;
    const detected = detectKind(firstLines(bytes));
    const use = kind ?? detected;
    const base = { fileName, size, detected, kind: use };
    if (!use) {
      this.preview = { ...base, problem: diagnose(bytes), valid: 0, errors: [], errorCount: 0, linesRead: 0 };
      return;
    }
    const checked = await this.check(bytes, use, fileName);
    this.preview = {
      ...base,
      problem: checked.problem,
      valid: checked.valid,
      errors: checked.errors,
      errorCount: checked.errorCount,
      linesRead: checked.linesRead,
    };
  }

  /**
   * Check the file as `kind` against what is already saved (src/lib/data/import-check.ts): the
   * preview shows this, and the import saves what it returns.
   */
  private async check(bytes: Uint8Array, kind: JsonlKind, fileName: string): Promise<ImportCheck> {
    let existing: ImportCheckOptions['existing'];
    if (kind === 'native') {
      const s = await getStores();
      const [prefKeys, demoKeys] = await Promise.all([
        s.db.getAllKeys(STORES.preferences),
        s.db.getAllKeys(STORES.demonstrations),
      ]);
      existing = { preferences: new Set(prefKeys), demonstrations: new Set(demoKeys) };
    }
    return checkImport(bytes, kind, { fileName, existing });
  }

  /**
   * Save the checked file: with `validOnly` false (the default) only when every
   * line is good; with `validOnly` true the good lines, the bad ones left out.
   */
  async commitImport(validOnly = false): Promise<boolean> {
    const p = this.preview;
    const bytes = this.importBytes;
    if (!p || !bytes || !p.kind || p.problem) return false;
    this.importing = true;
    try {
      const checked = await this.check(bytes, p.kind, p.fileName);
      if (checked.problem) {
        notices.add('error', `Nothing was imported: ${sentence(checked.problem)}`);
        return false;
      }
      if (checked.errorCount > 0 && !validOnly) {
        notices.add('error', `Nothing was imported: ${checked.errorCount} line(s) have errors.`);
        return false;
      }
      if (checked.valid === 0) {
        notices.add('error', 'Nothing was imported: the file has no valid lines.');
        return false;
      }
      let what = '';
      const { preferences, demonstrations, promptSet } = checked;
      switch (checked.kind) {
        case 'native':
          await saveAll(preferences, demonstrations);
          what = `${preferences.length} record(s) and ${demonstrations.length} demonstration(s)`;
          break;
        case 'preference':
          await saveAll(preferences);
          what = `${preferences.length} preference pair(s) (annotator “imported”)`;
          break;
        case 'prompt-completion':
          await saveAll([], demonstrations);
          what = `${demonstrations.length} demonstration(s)`;
          break;
        case 'prompt': {
          if (!promptSet) return false;
          const s = await getStores();
          askPersistence();
          await s.prompts.add({ ...promptSet, id: newId(), createdAt: Date.now() });
          this.bump();
          what = `a prompt set “${promptSet.name}” with ${promptSet.prompts.length} prompt(s) (pick it in the Feedback studio)`;
          break;
        }
        case 'unpaired':
          return false;
      }
      const skipped = checked.errorCount ? `; ${checked.errorCount} bad line(s) left out` : '';
      notices.add('info', `Imported ${what} from ${p.fileName}${skipped}.`);
      this.clearImport();
      return true;
    } catch (e) {
      notices.add('error', `Nothing was imported: ${sentence((e as Error).message)}`);
      return false;
    } finally {
      this.importing = false;
    }
  }
}

export const dataState = new DataState();

export { FEEDBACK_MODES, PAIRWISE_LABELS };
