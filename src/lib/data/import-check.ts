/**
 * The one check of a JSONL file before the Data page imports it: the preview shows its result and
 * the import saves exactly what it returns, so a preview never offers an import that is then
 * refused. It parses every line (src/lib/data/jsonl.ts), turns the rows into what will be saved
 * (records, demonstrations or a prompt set) and validates those as the stores and the prompt sets
 * do; existing ids (native files) are errors on their lines. Pure: the caller reads the ids that
 * are already saved.
 */

import {
  MAX_LISTED_ERRORS,
  parseJsonl,
  preferenceRowsToRecords,
  sftRowsToDemonstrations,
  type JsonlKind,
  type LineError,
  type NativeItem,
} from './jsonl';
import { sentence, sentenceEnd } from './messages';
import { checkPromptRows, MAX_PROMPTS, parsePromptSet, type PromptSet } from './prompts';
import { validateDemonstration, validateRecord, type Demonstration, type PreferenceRecord } from './records';

export interface ImportCheck {
  kind: JsonlKind;
  /** Why nothing of the file can be imported as this kind; null when the lines tell. */
  problem: string | null;
  /** What an import saves (all of it; the lines with errors are already left out). */
  preferences: PreferenceRecord[];
  demonstrations: Demonstration[];
  /** Prompt-only files: the set the import adds. */
  promptSet: PromptSet | null;
  /** Lines that will be imported. */
  valid: number;
  /** The first `MAX_LISTED_ERRORS` errors, by line. */
  errors: LineError[];
  errorCount: number;
  /** Non-blank lines read. */
  linesRead: number;
}

export interface ImportCheckOptions {
  /** The file's name: a prompt set is named after it. */
  fileName: string;
  /** Ids already saved: a native line with one of them is an error (existing data never changes). */
  existing?: { preferences: ReadonlySet<string>; demonstrations: ReadonlySet<string> };
  /** The time stamped on imported TRL rows. */
  now?: number;
}

/** Unpaired rows cannot become comparisons: the whole file is refused as that kind. */
export const UNPAIRED_PROBLEM =
  'Unpaired (KTO) rows say whether one completion is good, not which of two is better, so they cannot become comparisons here. Import preference or native files instead.';

/** Check a file as `kind`; see the file header. */
export function checkImport(input: string | Uint8Array, kind: JsonlKind, opts: ImportCheckOptions): ImportCheck {
  const res = parseJsonl(input, kind, { policy: 'valid-lines' });
  const errors = [...res.errors];
  let errorCount = res.errorCount;
  const addError = (e: LineError) => {
    errorCount++;
    errors.push(e);
  };
  const out: ImportCheck = {
    kind,
    problem: null,
    preferences: [],
    demonstrations: [],
    promptSet: null,
    valid: 0,
    errors,
    errorCount: 0,
    linesRead: res.linesRead,
  };
  /** Keep what validates; an error on the line of each item that does not. */
  function keep<T>(items: readonly T[], validate: (x: T) => T): T[] {
    const good: T[] = [];
    items.forEach((it, i) => {
      try {
        good.push(validate(it));
      } catch (e) {
        addError({ line: res.lines[i] ?? 0, reason: sentenceEnd((e as Error).message) });
      }
    });
    return good;
  }

  switch (kind) {
    case 'native': {
      const have = opts.existing;
      (res.records as NativeItem[]).forEach((it, i) => {
        const isRecord = 'mode' in it;
        if (have && (isRecord ? have.preferences : have.demonstrations).has(it.id)) {
          addError({
            line: res.lines[i] ?? 0,
            reason: `${isRecord ? 'a record' : 'a demonstration'} with id "${it.id}" is already saved (existing data is never changed)`,
          });
        } else if (isRecord) out.preferences.push(it);
        else out.demonstrations.push(it);
      });
      out.valid = out.preferences.length + out.demonstrations.length;
      break;
    }
    case 'preference': {
      const recs = preferenceRowsToRecords(res.records as Parameters<typeof preferenceRowsToRecords>[0], {
        annotator: { name: 'imported', kind: 'human' },
        now: opts.now,
      });
      out.preferences = keep(recs, validateRecord);
      out.valid = out.preferences.length;
      break;
    }
    case 'prompt-completion': {
      const demos = sftRowsToDemonstrations(res.records as Parameters<typeof sftRowsToDemonstrations>[0], opts.now);
      out.demonstrations = keep(demos, validateDemonstration);
      out.valid = out.demonstrations.length;
      break;
    }
    case 'prompt': {
      const { prompts, errors: bad } = checkPromptRows(res.records as { prompt: string }[], res.lines);
      bad.forEach(addError);
      out.valid = prompts.length;
      if (prompts.length > MAX_PROMPTS) {
        out.problem = `The file has ${prompts.length} prompts; a prompt set holds at most ${MAX_PROMPTS}. Split it.`;
      } else if (prompts.length) {
        try {
          out.promptSet = parsePromptSet({
            name: opts.fileName.replace(/\.jsonl?$/i, '').trim() || 'imported prompts',
            description: `Imported from ${opts.fileName}`,
            prompts,
          });
        } catch (e) {
          out.problem = sentence((e as Error).message);
        }
      }
      break;
    }
    case 'unpaired':
      out.valid = res.records.length;
      out.problem = UNPAIRED_PROBLEM;
      break;
  }
  errors.sort((a, b) => a.line - b.line);
  out.errors = errors.slice(0, MAX_LISTED_ERRORS);
  out.errorCount = errorCount;
  return out;
}
