/**
 * The Data page's import check (src/lib/data/import-check.ts): what the preview shows is what
 * the import saves. A line the import would refuse (a prompt too long for a prompt set, an id
 * already saved) is an error on its line in the preview, never a refusal after the click.
 */
import { describe, expect, it } from 'vitest';
import { checkImport, UNPAIRED_PROBLEM } from '../../src/lib/data/import-check';
import { sentence, sentenceEnd } from '../../src/lib/data/messages';
import { toNativeJsonl, toTrlPromptJsonl, utf8 } from '../../src/lib/data/jsonl';
import { MAX_PROMPT_CHARS, MAX_PROMPTS, parsePromptSet, promptSetFromJsonl } from '../../src/lib/data/prompts';
import { makeRecord, validateDemonstration, type Demonstration } from '../../src/lib/data/records';

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

function record(prompt: string) {
  return makeRecord(
    {
      prompt,
      responses: [
        { text: ' good', tokenIds: [1] },
        { text: ' bad', tokenIds: [2] },
      ],
      modelId: 'tiny-gpt',
      checkpointId: 'base',
      sampling: { temperature: 1, topK: 0, topP: 1, maxNewTokens: 4 },
      seed: 1,
      annotator: { name: 'me', kind: 'human' },
    },
    'pairwise',
    'A',
    1000,
  );
}

describe('checkImport: prompt-only files', () => {
  it('a 2,500-character prompt is an error on its line, so the preview offers nothing to import', () => {
    const long = 'x'.repeat(2500);
    const c = checkImport(toTrlPromptJsonl([long]), 'prompt', { fileName: 'long.jsonl' });
    expect(c.valid).toBe(0);
    expect(c.errorCount).toBe(1);
    expect(c.errors).toEqual([{ line: 1, reason: `"prompt" is 2500 characters long; at most ${MAX_PROMPT_CHARS}` }]);
    expect(c.promptSet).toBeNull();
    expect(c.problem).toBeNull();
    // The same rule as a prompt set's: parsePromptSet refuses that prompt too.
    expect(() => parsePromptSet({ name: 'x', prompts: [long] })).toThrow(/2500 characters long/);
  });

  it('good lines around a bad one: the good ones make the set the import adds, the bad one is listed', () => {
    const text = jsonl([
      { prompt: 'The movie was' },
      { prompt: 'y'.repeat(MAX_PROMPT_CHARS + 1) },
      { prompt: '' },
      { prompt: 'Once upon a time,' },
      { prompt: `tail with spaces${' '.repeat(MAX_PROMPT_CHARS)}` },
    ]);
    const c = checkImport(text, 'prompt', { fileName: 'mine.jsonl' });
    expect(c.linesRead).toBe(5);
    expect(c.valid).toBe(3);
    expect(c.errors.map((e) => e.line)).toEqual([2, 3]);
    expect(c.errors[0].reason).toMatch(/"prompt" is 2001 characters long/);
    expect(c.errors[1].reason).toMatch(/"prompt" is empty/);
    // Trailing spaces are trimmed as a prompt set keeps them, so that long line is fine.
    expect(c.promptSet).toEqual({
      name: 'mine',
      description: 'Imported from mine.jsonl',
      prompts: ['The movie was', 'Once upon a time,', 'tail with spaces'],
    });
  });

  it('more prompts than a set holds: the whole file is refused in the preview, with the numbers', () => {
    const c = checkImport(toTrlPromptJsonl(Array.from({ length: MAX_PROMPTS + 1 }, (_, i) => `p${i}`)), 'prompt', {
      fileName: 'big.jsonl',
    });
    expect(c.problem).toBe(
      `The file has ${MAX_PROMPTS + 1} prompts; a prompt set holds at most ${MAX_PROMPTS}. Split it.`,
    );
    expect(c.promptSet).toBeNull();
  });

  it('promptSetFromJsonl (the Feedback studio import) gives the same line errors, without a final period', () => {
    const { set, errors } = promptSetFromJsonl(jsonl([{ prompt: 'ok' }, { prompt: 'z'.repeat(2500) }]), 'x');
    expect(set).toBeNull();
    expect(errors).toEqual([{ line: 2, reason: `"prompt" is 2500 characters long; at most ${MAX_PROMPT_CHARS}` }]);
    const some = promptSetFromJsonl(jsonl([{ prompt: 'ok' }, { prompt: 'z'.repeat(2500) }]), 'x', {
      policy: 'valid-lines',
    });
    expect(some.set?.prompts).toEqual(['ok']);
  });
});

describe('checkImport: records and demonstrations', () => {
  it('native: an id already saved is an error on its own line (after bad lines too); the rest is what is saved', () => {
    const a = record('first');
    const b = record('second');
    const demo: Demonstration = validateDemonstration({
      id: 'd1',
      prompt: 'p',
      completion: ' c',
      source: 'import',
      createdAt: 1,
    });
    const lines = toNativeJsonl({ preferences: [a, b], demonstrations: [demo] })
      .trim()
      .split('\n');
    // header, a, (bad), b, demo
    const text = [lines[0], lines[1], '{"mode":"pairwise"}', lines[2], lines[3]].join('\n');
    const c = checkImport(utf8(text), 'native', {
      fileName: 'x.jsonl',
      existing: { preferences: new Set([b.id]), demonstrations: new Set() },
    });
    expect(c.errors.map((e) => e.line)).toEqual([3, 4]);
    expect(c.errors[1].reason).toBe(`a record with id "${b.id}" is already saved (existing data is never changed)`);
    expect(c.preferences.map((r) => r.id)).toEqual([a.id]);
    expect(c.demonstrations.map((d) => d.id)).toEqual(['d1']);
    expect(c.valid).toBe(2);
    expect(c.errorCount).toBe(2);
  });

  it('preference and SFT rows become validated records and demonstrations, stamped with the time given', () => {
    const pref = checkImport(
      jsonl([
        { prompt: 'p', chosen: ' yes', rejected: ' no' },
        { prompt: 'p', chosen: ' same', rejected: ' same' },
      ]),
      'preference',
      { fileName: 'prefs.jsonl', now: 42 },
    );
    expect(pref.valid).toBe(1);
    expect(pref.errors).toEqual([{ line: 2, reason: '"chosen" and "rejected" are the same text' }]);
    expect(pref.preferences[0]).toMatchObject({ prompt: 'p', mode: 'pairwise', label: 'A', createdAt: 42 });
    expect(pref.preferences[0].annotator).toEqual({ name: 'imported', kind: 'human' });

    const sft = checkImport(jsonl([{ prompt: 'p', completion: ' c' }]), 'prompt-completion', {
      fileName: 'sft.jsonl',
      now: 7,
    });
    expect(sft.valid).toBe(1);
    expect(sft.demonstrations[0]).toMatchObject({ prompt: 'p', completion: ' c', source: 'import', createdAt: 7 });
  });

  it('unpaired rows: refused as a whole, with the reason', () => {
    const c = checkImport(jsonl([{ prompt: 'p', completion: ' c', label: true }]), 'unpaired', { fileName: 'k.jsonl' });
    expect(c.problem).toBe(UNPAIRED_PROBLEM);
    expect(c.preferences).toEqual([]);
  });

  it('no message ends in two periods', () => {
    const c = checkImport(jsonl([{ prompt: 'a'.repeat(3000) }, { nope: 1 }, 'text']), 'prompt', {
      fileName: 'x.jsonl',
    });
    for (const e of c.errors) expect(e.reason).not.toMatch(/\.\.$/);
    expect(c.errors.length).toBe(3);
  });
});

describe('messages built from messages', () => {
  it('one period at the end, never two; other sentence ends are kept', () => {
    expect(`Nothing was imported: ${sentence('Prompt 1 is 2500 characters long; at most 2000.')}`).toBe(
      'Nothing was imported: Prompt 1 is 2500 characters long; at most 2000.',
    );
    expect(sentence('Unexpected token x in JSON')).toBe('Unexpected token x in JSON.');
    expect(sentence('Is this a binary file?')).toBe('Is this a binary file?');
    expect(sentence('Too many..')).toBe('Too many.');
    expect(`${sentenceEnd('at most 2000.')}; and more.`).toBe('at most 2000; and more.');
    expect(sentenceEnd('  a reason  ')).toBe('a reason');
  });
});
