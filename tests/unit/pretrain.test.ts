/**
 * The pretraining script runs end to end on a tiny corpus.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpeTokenizer } from '../../src/lib/model/tokenizer';
import { configFromHF } from '../../src/lib/model/weights';

describe('pretraining script', () => {
  it('a 20-step smoke run trains, logs, and writes a loadable model', () => {
    const out = mkdtempSync(join(tmpdir(), 'pretrain-'));
    try {
      execFileSync(
        'npx',
        [
          'tsx',
          'scripts/pretrain.ts',
          ...['--steps', '20', '--corpus', 'tests/fixtures/tiny-corpus', '--out', out, '--tokenizer-merges', '50'],
          ...['--n-layer', '1', '--n-embd', '32', '--n-head', '2', '--block-size', '32', '--batch', '4'],
          ...['--warmup', '2', '--lr', '1e-2', '--log-every', '5', '--eval-every', '10', '--ckpt-every', '10'],
        ],
        { stdio: 'pipe' },
      );
      const log = readFileSync(join(out, 'train-log.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, number | boolean | string>);
      const steps = log.filter((l) => typeof l.loss === 'number');
      expect(steps[0].step).toBe(5);
      expect(steps.at(-1)!.step).toBe(20);
      expect(steps.at(-1)!.loss as number).toBeLessThan(steps[0].loss as number);
      const final = log.at(-1)!;
      expect(final.final).toBe(true);
      expect(Number.isFinite(final.valLoss)).toBe(true);

      const config = configFromHF(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')));
      expect(config).toMatchObject({ nLayer: 1, nEmbd: 32, nHead: 2, blockSize: 32 });
      const tok = BpeTokenizer.fromJSON(JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')));
      expect(tok.vocabSize).toBe(config.vocabSize);
      const card = JSON.parse(readFileSync(join(out, 'card.json'), 'utf8')) as { valLoss: number; trainSteps: number };
      expect(card.valLoss).toBe(final.valLoss);
      expect(card.trainSteps).toBe(20);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
