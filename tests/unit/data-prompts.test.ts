import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BUNDLED_PROMPT_SETS, parsePromptSet, promptSetFromJsonl, PromptSetError } from '../../src/lib/data/prompts';
import { toTrlPromptJsonl } from '../../src/lib/data/jsonl';

describe('bundled prompt sets', () => {
  it.each(BUNDLED_PROMPT_SETS)('%s.json is valid, 20–40 unique short ASCII openings', (name) => {
    const text = readFileSync(new URL(`../../static/prompts/${name}.json`, import.meta.url), 'utf8');
    const set = parsePromptSet(text);
    expect(set.name).not.toBe('');
    expect(set.description).not.toBe('');
    expect(set.prompts.length).toBeGreaterThanOrEqual(20);
    expect(set.prompts.length).toBeLessThanOrEqual(40);
    // nothing dropped as duplicate or trimmed
    expect(set.prompts).toEqual(JSON.parse(text).prompts);
    for (const p of set.prompts) {
      expect(p).toMatch(/^[\x20-\x7e]+$/); // the corpus (and tokenizer training) is ASCII
      expect(p.split(' ').length).toBeLessThanOrEqual(12);
    }
  });
});

describe('parsePromptSet', () => {
  it('trims ends, drops duplicates', () => {
    expect(parsePromptSet({ name: ' n ', prompts: ['a ', 'a', ' b'] })).toEqual({
      name: 'n',
      description: '',
      prompts: ['a', ' b'],
    });
  });

  it.each([
    ['{not json', /not valid JSON/],
    [[], /JSON object/],
    [{ prompts: ['a'] }, /"name"/],
    [{ name: 'n', prompts: 'a' }, /list of texts/],
    [{ name: 'n', prompts: [] }, /empty/],
    [{ name: 'n', prompts: ['a', 3] }, /Prompt 2 is not text/],
    [{ name: 'n', prompts: ['a', '  '] }, /Prompt 2 is empty/],
    [{ name: 'n', prompts: ['x'.repeat(2001)] }, /at most 2000/],
  ])('rejects %j', (json, msg) => {
    expect(() => parsePromptSet(json)).toThrow(PromptSetError);
    expect(() => parsePromptSet(json)).toThrow(msg);
  });
});

describe('prompt-only JSONL import', () => {
  it('round-trips the TRL prompt format', () => {
    const { set, errors } = promptSetFromJsonl(toTrlPromptJsonl(['The movie was', 'Once upon a time,']), 'mine');
    expect(errors).toEqual([]);
    expect(set).toEqual({ name: 'mine', description: '', prompts: ['The movie was', 'Once upon a time,'] });
  });

  it('all-or-nothing by default, valid lines on request', () => {
    const text = '{"prompt":"a"}\n{"prompt":""}\n{"prompt":"b"}\n';
    expect(promptSetFromJsonl(text, 'x').set).toBeNull();
    expect(promptSetFromJsonl(text, 'x').errors[0].line).toBe(2);
    expect(promptSetFromJsonl(text, 'x', { policy: 'valid-lines' }).set?.prompts).toEqual(['a', 'b']);
  });
});
