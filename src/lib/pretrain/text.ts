/**
 * Text in, for pretraining in the tab: bytes → UTF-8 text (in chunks, so a 50 MB file never
 * needs one giant decode) → documents → a seeded train / validation split by document.
 *
 * Formats: `.txt` / `.md` (a document per blank-line-separated block), `.jsonl` (the `text`
 * field of each line), `.csv` (one column, RFC 4180 quoting: https://www.rfc-editor.org/rfc/rfc4180).
 * Decoding uses the platform's `TextDecoder` with `fatal: true` and `stream: true`, which carries a
 * multi-byte sequence split across two chunks into the next call
 * (https://encoding.spec.whatwg.org/#interface-textdecoder). Every refusal is a `PretrainDataError`
 * naming the file and saying what to do.
 */
import { Rng } from '../model/rng';

export class PretrainDataError extends Error {
  override name = 'PretrainDataError';
}

/** Bytes read per decode call. */
export const CHUNK_BYTES = 1 << 20;

export type TextFormat = 'text' | 'jsonl' | 'csv';

/** The format a file name implies: `.jsonl` and `.csv` by extension, anything else plain text. */
export function formatOf(name: string): TextFormat {
  const n = name.toLowerCase();
  if (n.endsWith('.jsonl') || n.endsWith('.ndjson')) return 'jsonl';
  if (n.endsWith('.csv')) return 'csv';
  return 'text';
}

/**
 * Incremental UTF-8 decoding: `push` each chunk, then `end`. Refuses empty input, binary data
 * (a NUL byte), UTF-16 (its byte-order mark) and invalid UTF-8, naming the byte range.
 */
export class ChunkDecoder {
  private decoder = new TextDecoder('utf-8', { fatal: true });
  private parts: string[] = [];
  private offset = 0;

  constructor(readonly fileName: string) {}

  push(chunk: Uint8Array): void {
    if (this.offset === 0 && chunk.length >= 2) {
      const [a, b] = chunk;
      if ((a === 0xff && b === 0xfe) || (a === 0xfe && b === 0xff))
        throw new PretrainDataError(
          `${this.fileName} is UTF-16 text; this app reads UTF-8. Save it as UTF-8 (most editors offer it under "Save as") and add it again.`,
        );
    }
    const nul = chunk.indexOf(0);
    if (nul >= 0)
      throw new PretrainDataError(
        `${this.fileName} looks like a binary file (a zero byte at byte ${(this.offset + nul).toLocaleString('en')}), not text. Add a .txt, .md, .jsonl or .csv file.`,
      );
    try {
      this.parts.push(this.decoder.decode(chunk, { stream: true }));
    } catch {
      throw this.invalid(Math.max(0, this.offset - 3), this.offset + chunk.length); // a sequence may start in the chunk before
    }
    this.offset += chunk.length;
  }

  /** The whole text; throws when the input was empty or ended inside a character. */
  end(): string {
    try {
      this.parts.push(this.decoder.decode());
    } catch {
      throw this.invalid(Math.max(0, this.offset - 4), this.offset);
    }
    const text = this.parts.join('');
    if (this.offset === 0 || text.trim().length === 0)
      throw new PretrainDataError(`${this.fileName} is empty (no text in it). Add a file with text.`);
    return text;
  }

  private invalid(from: number, to: number): PretrainDataError {
    const f = (n: number) => n.toLocaleString('en');
    return new PretrainDataError(
      `${this.fileName} is not valid UTF-8 (a bad byte sequence between bytes ${f(from)} and ${f(to)}); it may be in another encoding such as Latin-1 or Windows-1252. Save it as UTF-8 and add it again.`,
    );
  }
}

/** Decode `bytes` in chunks of `chunkBytes` (the seam a test uses to split characters). */
export function decodeUtf8(bytes: Uint8Array, fileName: string, chunkBytes = CHUNK_BYTES): string {
  const d = new ChunkDecoder(fileName);
  for (let i = 0; i < bytes.length; i += chunkBytes) d.push(bytes.subarray(i, i + chunkBytes));
  return d.end();
}

/** Plain text → documents: blocks separated by blank lines, trimmed, empty ones dropped. */
export function textDocuments(text: string): string[] {
  return text
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*\n/)
    .map((d) => d.trim())
    .filter((d) => d.length > 0);
}

/** JSON Lines → the `text` field of each line; a bad line is named by its number. */
export function jsonlDocuments(text: string, fileName: string): string[] {
  const docs: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      throw new PretrainDataError(`${fileName}, line ${i + 1}: not valid JSON. Each line must be one JSON object.`);
    }
    const t = (o as { text?: unknown } | null)?.text;
    if (typeof o !== 'object' || o === null || typeof t !== 'string')
      throw new PretrainDataError(`${fileName}, line ${i + 1}: needs a "text" field holding a string.`);
    if (t.trim()) docs.push(t.trim());
  }
  return docs;
}

/** RFC 4180 CSV → rows of fields: quoted fields may hold commas, newlines and doubled quotes. */
export function parseCsv(text: string, fileName: string, maxRows = Infinity): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let line = 1;
  const n = text.length;
  const endField = () => {
    row.push(field);
    field = '';
  };
  const endRow = () => {
    endField();
    if (!(row.length === 1 && row[0] === '')) rows.push(row);
    row = [];
  };
  while (i < n && rows.length < maxRows) {
    const c = text[i];
    if (c === '"' && field === '') {
      const startLine = line;
      i++;
      for (;;) {
        if (i >= n)
          throw new PretrainDataError(`${fileName}: the quoted field that starts on line ${startLine} never ends.`);
        const q = text[i];
        if (q === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (q === '\n') line++;
        field += q;
        i++;
      }
      if (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r')
        throw new PretrainDataError(
          `${fileName}, line ${line}: text after a closing quote; double a quote inside a quoted field ("").`,
        );
      continue;
    }
    if (c === ',') endField();
    else if (c === '\n') {
      endRow();
      line++;
    } else if (c === '\r') {
      if (text[i + 1] !== '\n') {
        endRow();
        line++;
      }
    } else field += c;
    i++;
  }
  if (rows.length < maxRows && (field !== '' || row.length)) endRow();
  return rows;
}

/** The header of a CSV file (its first row), for the column choice. */
export function csvColumns(text: string, fileName: string): string[] {
  return (parseCsv(text, fileName, 1)[0] ?? []).map((h) => h.trim());
}

/** CSV → the cells of `column` (by header name; default `text`, else the first column). */
export function csvDocuments(text: string, fileName: string, column?: string): string[] {
  const rows = parseCsv(text, fileName);
  if (rows.length === 0) throw new PretrainDataError(`${fileName} has no rows.`);
  const header = rows[0].map((h) => h.trim());
  const name = column ?? (header.includes('text') ? 'text' : header[0]);
  const col = header.indexOf(name);
  if (col < 0)
    throw new PretrainDataError(
      `${fileName} has no column "${name}"; its columns are ${header.map((h) => `"${h}"`).join(', ')}.`,
    );
  return rows
    .slice(1)
    .map((r) => (r[col] ?? '').trim())
    .filter((d) => d.length > 0);
}

/** Documents of a decoded file by its format (`column` for CSV). */
export function documentsOf(text: string, fileName: string, format: TextFormat, column?: string): string[] {
  const docs =
    format === 'jsonl'
      ? jsonlDocuments(text, fileName)
      : format === 'csv'
        ? csvDocuments(text, fileName, column)
        : textDocuments(text);
  if (docs.length === 0) throw new PretrainDataError(`${fileName} holds no documents (no non-empty text).`);
  return docs;
}

export interface TextStats {
  /** UTF-8 bytes of the documents (each followed by a newline). */
  bytes: number;
  /** Unicode code points. */
  characters: number;
  lines: number;
  documents: number;
}

/** Size of a set of documents; bytes count each document plus one separator byte. */
export function textStats(docs: readonly string[]): TextStats {
  let bytes = 0;
  let characters = 0;
  let lines = 0;
  for (const d of docs) {
    lines += 1;
    for (let i = 0; i < d.length; i++) {
      const c = d.charCodeAt(i);
      if (c >= 0xdc00 && c <= 0xdfff) continue; // the second half of a surrogate pair
      characters++;
      if (c === 10) lines++;
      bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdbff ? 4 : 3;
    }
    bytes += 1;
  }
  return { bytes, characters, lines, documents: docs.length };
}

/** Share of documents kept for validation. */
export const VAL_FRACTION = 0.05;

/**
 * A seeded split by document: ⌈5 %⌉ (at least one) of the documents, drawn without replacement,
 * for validation; the rest, in their order, for training. Needs two documents or more.
 */
export function splitTrainVal(
  docs: readonly string[],
  seed: number,
  fraction = VAL_FRACTION,
): { train: string[]; val: string[] } {
  if (docs.length < 2)
    throw new PretrainDataError(
      `The text has ${docs.length} document${docs.length === 1 ? '' : 's'}; it needs at least two (separate them with a blank line), so that one can be kept for validation.`,
    );
  const nVal = Math.min(docs.length - 1, Math.max(1, Math.ceil(docs.length * fraction)));
  const idx = Array.from(docs.keys());
  const rng = new Rng(seed);
  for (let i = idx.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  const isVal = new Uint8Array(docs.length);
  for (const i of idx.slice(0, nVal)) isVal[i] = 1;
  const train: string[] = [];
  const val: string[] = [];
  docs.forEach((d, i) => (isVal[i] ? val : train).push(d));
  return { train, val };
}
