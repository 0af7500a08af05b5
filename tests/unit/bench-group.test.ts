/**
 * The critic-free bench case (src/lib/engine/bench-group.ts) on a tiny random GPT: a GRPO and an
 * RLOO iteration are timed, each trainer's memory is measured beside PPO's, and the critic-free
 * trainers (no value model) hold less than PPO and leak no tensors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf, useBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import type { BpeTokenizer } from '../../src/lib/model/tokenizer';
import { benchGroup } from '../../src/lib/engine/bench-group';

const V = 40;
const tok = {
  eotId: V - 1,
  encode: (text: string) => [...text].map((ch) => ch.charCodeAt(0) % (V - 1)),
  decode: (ids: number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join(''),
} as unknown as BpeTokenizer;

beforeAll(async () => {
  await useBackend('cpu');
});
afterAll(() => tf.disposeVariables());

describe('bench: GRPO and RLOO beside PPO', () => {
  it('times one GRPO and one RLOO iteration and reports the memory of each trainer against PPO', async () => {
    const model = new GPT(
      { vocabSize: V, blockSize: 24, nLayer: 1, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 },
      { seed: 1 },
    );
    const small = { batchSize: 4, numGenerations: 2, maxCompletionLength: 4 };
    const rows = await benchGroup(
      model,
      tok,
      {
        what: ['group'],
        warmup: 0,
        groupIterations: 2,
        ppoConfig: { batchSize: 4, maxNewTokens: 4, miniBatches: 1, ppoEpochs: 1 },
        grpoConfig: small,
        rlooConfig: small,
      },
      async () => {},
    );
    expect(rows.map((r) => r.name)).toEqual([
      'PPO trainer memory (for the critic-free rows)',
      'GRPO iteration (defaults)',
      'RLOO iteration (defaults)',
    ]);
    const [ppo, grpo, rloo] = rows;
    for (const r of [grpo, rloo]) {
      expect(r.n).toBe(2);
      expect(r.medianMs).toBeGreaterThan(0);
      expect(r.tensorsGrowth).toBe(0);
      expect(r.unit).toBe('MB held by the trainer');
      expect(r.value!).toBeGreaterThan(0);
      // No value model (its trunk and Adam moments): less than PPO holds.
      expect(r.value!).toBeLessThan(ppo.value!);
    }
    model.dispose();
  }, 120_000);
});
