import { describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, readZip, writeZip, ZipError, type ZipEntry } from '../../src/lib/data/zip';

interface Fixture {
  entries: { name: string; base64: string; crc32: number }[];
  crc32Check: number;
}
const fixture = JSON.parse(readFileSync('tests/golden/zip-python.json', 'utf8')) as Fixture;
const PYTHON = '/usr/bin/python3';

const ENTRIES: ZipEntry[] = [
  { name: 'README.md', data: '# Bundle\n\nUTF-8: café ☕\n' },
  { name: 'data/preferences.jsonl', data: '{"prompt":"a","chosen":"b","rejected":"c"}\n' },
  { name: 'data/empty.txt', data: new Uint8Array(0) },
  { name: 'model/weights.bin', data: Uint8Array.from({ length: 5000 }, (_, i) => (i * 37) & 0xff) },
  { name: 'données/☕.txt', data: 'x' },
];

function bytesOf(d: Uint8Array | string): Uint8Array {
  return typeof d === 'string' ? new TextEncoder().encode(d) : d;
}

describe('CRC-32', () => {
  test('the standard check value and zlib.crc32 of the fixture entries', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(fixture.crc32Check).toBe(0xcbf43926);
    for (const e of fixture.entries) expect(crc32(Buffer.from(e.base64, 'base64'))).toBe(e.crc32);
  });
  test('incremental CRC equals one-shot CRC', () => {
    const b = new TextEncoder().encode('hello, zip world');
    expect(crc32(b.subarray(5), crc32(b.subarray(0, 5)))).toBe(crc32(b));
  });
});

describe('reading a ZIP made by Python zipfile (tests/golden/zip-python.zip)', () => {
  test('every entry, name and bytes', () => {
    const files = readZip(new Uint8Array(readFileSync('tests/golden/zip-python.zip')));
    expect([...files.keys()]).toEqual(fixture.entries.map((e) => e.name));
    for (const e of fixture.entries) expect(Buffer.from(files.get(e.name)!)).toEqual(Buffer.from(e.base64, 'base64'));
  });
});

describe('writeZip', () => {
  test('round-trips through readZip', () => {
    const files = readZip(writeZip(ENTRIES));
    expect([...files.keys()]).toEqual(ENTRIES.map((e) => e.name));
    for (const e of ENTRIES) expect(files.get(e.name)).toEqual(bytesOf(e.data));
  });

  test('a fixed date gives identical bytes', () => {
    const d = new Date(2024, 0, 2, 3, 4, 6);
    expect(writeZip(ENTRIES, d)).toEqual(writeZip(ENTRIES, d));
  });

  test.runIf(existsSync(PYTHON))("Python's zipfile reads it: testzip() passes, names, bytes and date match", () => {
    const dir = mkdtempSync(join(tmpdir(), 'zip-test-'));
    try {
      const path = join(dir, 'a.zip');
      writeFileSync(path, writeZip(ENTRIES, new Date(2024, 4, 17, 12, 30, 44)));
      const script = [
        'import base64, json, sys, zipfile',
        'z = zipfile.ZipFile(sys.argv[1])',
        'assert z.testzip() is None',
        'print(json.dumps([[i.filename, i.compress_type, list(i.date_time), base64.b64encode(z.read(i)).decode()] for i in z.infolist()]))',
      ].join('\n');
      const out = JSON.parse(execFileSync(PYTHON, ['-c', script, path], { encoding: 'utf8' })) as [
        string,
        number,
        number[],
        string,
      ][];
      expect(out.map((r) => r[0])).toEqual(ENTRIES.map((e) => e.name));
      for (const [i, r] of out.entries()) {
        expect(r[1]).toBe(0); // ZIP_STORED
        expect(r[2]).toEqual([2024, 5, 17, 12, 30, 44]);
        expect(Buffer.from(r[3], 'base64')).toEqual(Buffer.from(bytesOf(ENTRIES[i].data)));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad names and duplicates are refused with ZipError', () => {
    for (const name of ['', '/abs.txt', '../up.txt', 'a//b', 'a\\b', 'a/./b'])
      expect(() => writeZip([{ name, data: 'x' }])).toThrow(ZipError);
    expect(() =>
      writeZip([
        { name: 'a', data: 'x' },
        { name: 'a', data: 'y' },
      ]),
    ).toThrow(/twice/);
  });
});

describe('readZip refuses broken archives', () => {
  test('not a zip, a flipped data byte, a compressed entry', () => {
    expect(() => readZip(new TextEncoder().encode('just text, no zip here at all'))).toThrow(ZipError);
    const z = writeZip([{ name: 'a.txt', data: 'hello' }]);
    const bad = z.slice();
    bad[30 + 'a.txt'.length] ^= 0xff; // first data byte
    expect(() => readZip(bad)).toThrow(/CRC-32/);
    const deflated = z.slice();
    const cd = new DataView(deflated.buffer).getUint32(deflated.length - 6, true);
    new DataView(deflated.buffer).setUint16(cd + 10, 8, true); // method 8 in the central directory
    expect(() => readZip(deflated)).toThrow(/compressed/);
  });
});
