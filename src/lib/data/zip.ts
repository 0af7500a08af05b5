/**
 * A store-only ZIP writer and reader (no compression), enough for the hand-off bundle.
 *
 * Written from PKWARE's APPNOTE.TXT (version 6.3.10): §4.3.7 local file header, §4.3.12 central
 * directory header, §4.3.16 end of central directory record, §4.4.4 general purpose flag bit 11
 * (names are UTF-8), §4.4.5 compression method 0 (stored), §4.4.6 MS-DOS time and date, §4.4.7
 * CRC-32 (polynomial 0xEDB88320, reflected, init and final XOR 0xFFFFFFFF). No ZIP64: every file
 * and the whole archive must stay under 4 GiB, and at most 65,535 entries.
 *
 * Weights barely compress (float noise), and text is small, so storing keeps this simple and the
 * download instant. Python's `zipfile`, `unzip` and every OS reader open these archives.
 */

export class ZipError extends Error {
  override name = 'ZipError';
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 of bytes (APPNOTE §4.4.7; same as zlib's `crc32`). `crc32("123456789") = 0xCBF43926`. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface ZipEntry {
  /** Path inside the archive, `/`-separated, no leading `/`, no `..`. */
  name: string;
  data: Uint8Array | string;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_END = 0x06054b50;
const FLAG_UTF8 = 0x0800;
const VERSION = 20; // 2.0: the lowest that readers expect for folders in names
const MAX_U32 = 0xffffffff;

/** MS-DOS time and date (APPNOTE §4.4.6), local time as DOS has no zone; years before 1980 clamp. */
function dosDateTime(d: Date): { time: number; date: number } {
  const year = Math.min(2107, Math.max(1980, d.getFullYear()));
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | Math.floor(d.getSeconds() / 2),
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

function checkName(name: string): void {
  if (
    name === '' ||
    name.startsWith('/') ||
    name.includes('\\') ||
    name.split('/').some((p) => p === '..' || p === '.' || p === '')
  ) {
    throw new ZipError(`"${name}" is not a valid file name inside a ZIP: use a relative path like "dir/file.txt".`);
  }
}

/**
 * Build a ZIP archive (stored, no compression). `modified` sets every entry's time
 * (default: now), so a fixed date gives byte-identical archives.
 */
export function writeZip(entries: readonly ZipEntry[], modified: Date = new Date()): Uint8Array {
  if (entries.length > 0xffff)
    throw new ZipError(`A ZIP without ZIP64 holds at most 65,535 files, not ${entries.length}.`);
  const enc = new TextEncoder();
  const { time, date } = dosDateTime(modified);
  const seen = new Set<string>();
  const files = entries.map((e) => {
    checkName(e.name);
    if (seen.has(e.name)) throw new ZipError(`"${e.name}" is in the archive twice.`);
    seen.add(e.name);
    const data = typeof e.data === 'string' ? enc.encode(e.data) : e.data;
    if (data.length >= MAX_U32) throw new ZipError(`"${e.name}" is 4 GiB or larger; this writer has no ZIP64.`);
    return { name: enc.encode(e.name), data, crc: crc32(data) };
  });
  const localSize = files.reduce((s, f) => s + 30 + f.name.length + f.data.length, 0);
  const centralSize = files.reduce((s, f) => s + 46 + f.name.length, 0);
  const total = localSize + centralSize + 22;
  if (localSize + centralSize >= MAX_U32)
    throw new ZipError('The archive would be 4 GiB or larger; this writer has no ZIP64.');
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let p = 0;
  const u16 = (v: number) => {
    dv.setUint16(p, v, true);
    p += 2;
  };
  const u32 = (v: number) => {
    dv.setUint32(p, v >>> 0, true);
    p += 4;
  };
  const offsets: number[] = [];
  for (const f of files) {
    offsets.push(p);
    u32(SIG_LOCAL);
    u16(VERSION); // version needed to extract
    u16(FLAG_UTF8);
    u16(0); // method: stored
    u16(time);
    u16(date);
    u32(f.crc);
    u32(f.data.length); // compressed size
    u32(f.data.length); // uncompressed size
    u16(f.name.length);
    u16(0); // extra field length
    out.set(f.name, p);
    p += f.name.length;
    out.set(f.data, p);
    p += f.data.length;
  }
  const centralStart = p;
  const centralEnd = centralStart + centralSize;
  files.forEach((f, i) => {
    u32(SIG_CENTRAL);
    u16((3 << 8) | VERSION); // made by: UNIX (so the external attributes carry permissions), 2.0
    u16(VERSION);
    u16(FLAG_UTF8);
    u16(0);
    u16(time);
    u16(date);
    u32(f.crc);
    u32(f.data.length);
    u32(f.data.length);
    u16(f.name.length);
    u16(0); // extra
    u16(0); // comment
    u16(0); // disk number start
    u16(0); // internal attributes
    u32((0o100644 << 16) >>> 0); // external: regular file, rw-r--r--
    u32(offsets[i]);
    out.set(f.name, p);
    p += f.name.length;
  });
  u32(SIG_END);
  u16(0); // this disk
  u16(0); // disk with the central directory
  u16(files.length);
  u16(files.length);
  u32(centralEnd - centralStart);
  u32(centralStart);
  u16(0); // comment length
  return out;
}

/**
 * Read a ZIP archive whose entries are stored (method 0), checking every CRC. Returns the
 * entries in central-directory order. Compressed entries are refused with a `ZipError`.
 */
export function readZip(bytes: Uint8Array): Map<string, Uint8Array> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dec = new TextDecoder('utf-8', { fatal: false });
  // The end record is the last 22 bytes plus a comment of up to 65,535 bytes.
  let end = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (dv.getUint32(i, true) === SIG_END) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new ZipError('Not a ZIP file: no end-of-central-directory record.');
  const count = dv.getUint16(end + 10, true);
  const cdSize = dv.getUint32(end + 12, true);
  let p = dv.getUint32(end + 16, true);
  if (p + cdSize > end) throw new ZipError('Broken ZIP: the central directory lies outside the file.');
  const out = new Map<string, Uint8Array>();
  for (let i = 0; i < count; i++) {
    if (p + 46 > bytes.length || dv.getUint32(p, true) !== SIG_CENTRAL)
      throw new ZipError(`Broken ZIP: central directory entry ${i} is missing.`);
    const method = dv.getUint16(p + 10, true);
    const crc = dv.getUint32(p + 16, true);
    const csize = dv.getUint32(p + 20, true);
    const usize = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    const local = dv.getUint32(p + 42, true);
    const name = dec.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    p += 46 + nameLen + extraLen + commentLen;
    if (method !== 0) throw new ZipError(`"${name}" is compressed (method ${method}); only stored entries are read.`);
    if (csize !== usize) throw new ZipError(`"${name}": stored sizes differ (${csize} vs ${usize}).`);
    if (local + 30 > bytes.length || dv.getUint32(local, true) !== SIG_LOCAL)
      throw new ZipError(`Broken ZIP: the local header of "${name}" is missing.`);
    const start = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
    if (start + csize > bytes.length) throw new ZipError(`Broken ZIP: "${name}" runs past the end of the file.`);
    const data = bytes.slice(start, start + csize);
    if (crc32(data) !== crc) throw new ZipError(`"${name}" fails its CRC-32 check: the archive is corrupt.`);
    out.set(name, data);
  }
  return out;
}
