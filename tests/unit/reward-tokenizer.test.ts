/**
 * A reward model belongs to the tokenizer it was trained with (src/lib/engine/reward-host.ts).
 * A researcher trains one on the bundled model, loads a Hub checkpoint (tests/fixtures/hf, written
 * by the independent PyTorch script) and starts PPO: the engine refuses to score the new model's
 * ids with it, with a message, instead of reading ids it never saw. The same for two checkpoints
 * of one vocabulary size and different tokenizers; loading the model it was trained on again
 * makes it usable.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { engineWithBundledModel } from './bundled-engine';
import { NotReadyError } from '../../src/lib/engine/errors';
import { tokenizerFingerprint } from '../../src/lib/engine/reward-host';
import type { TrainingPair } from '../../src/lib/data/records';
import { BpeTokenizer, trainBpe } from '../../src/lib/model/tokenizer';

const CORPUS = readFileSync('static/corpus/train.txt', 'utf8');
const PROMPTS = ['The movie was', 'The food was', 'The book was', 'The show was', 'My day was'];
const PAIRS: TrainingPair[] = PROMPTS.flatMap((prompt) =>
  [0, 1].map((i) => ({ prompt, chosen: ` great great${' !'.repeat(i)}`, rejected: ` awful${' .'.repeat(i)}` })),
);
const SAMPLES = [{ prompt: 'The movie was', response: ' great' }];

/** A byte-level BPE tokenizer.json of 512 tokens, trained on a slice of the corpus. */
function tokenizer512(from: number): string {
  return JSON.stringify(trainBpe([CORPUS.slice(from, from + 60_000)], 512 - 257).toJSON());
}

function hubFiles(name: string, tokenizer: string) {
  const weights = readFileSync(`tests/fixtures/hf/${name}/model.safetensors`);
  return {
    name,
    source: 'files' as const,
    config: readFileSync(`tests/fixtures/hf/${name}/config.json`, 'utf8'),
    tokenizer,
    weights: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer,
  };
}

const train = (engine: Awaited<ReturnType<typeof engineWithBundledModel>>, id: string) =>
  engine.trainRewardModel(id, { id, name: id, pairs: PAIRS, recordIds: [], mode: 'head', epochs: 3, seed: 1 });

describe('a reward model and the loaded tokenizer', () => {
  it('is refused for a model of another vocabulary or tokenizer, and usable again with its own', async () => {
    const engine = await engineWithBundledModel();
    const { state } = await train(engine, 'rm-bundled');
    const bundledTok = BpeTokenizer.fromJSON(JSON.parse(readFileSync('public/models/tiny-gpt/tokenizer.json', 'utf8')));
    expect(state.tokenizer).toBe(tokenizerFingerprint(bundledTok));
    expect((await engine.scoreResponses(SAMPLES)).every(Number.isFinite)).toBe(true);

    // The Hub GPT-2 (512 tokens): the bundled model's reward model is refused everywhere it would score.
    const tokA = tokenizer512(0);
    await engine.loadModel(hubFiles('gpt2-tiny', tokA));
    const vocab = /reward model "rm-bundled" was trained on a model with 1,281 tokens, but the loaded model has 512/;
    await expect(engine.scoreResponses(SAMPLES)).rejects.toThrow(vocab);
    await expect(engine.scoreResponses(SAMPLES)).rejects.toThrow(NotReadyError);
    await expect(engine.tokenRewards('The movie was', ' great')).rejects.toThrow(vocab);
    const ppo = {
      prompts: PROMPTS,
      evalPrompts: PROMPTS.slice(0, 1),
      config: { batchSize: 2, maxNewTokens: 4, ppoEpochs: 1, seed: 2 },
      reward: { kind: 'reward-model' as const },
    };
    await expect(engine.ppoCreate(ppo)).rejects.toThrow(vocab);
    await expect(
      engine.groupCreate({ algo: 'grpo', config: {}, prompts: PROMPTS, reward: { kind: 'reward-model' } }),
    ).rejects.toThrow(vocab);

    // A reward model trained on it works; a Llama of the same size with another tokenizer is refused.
    await train(engine, 'rm-gpt2');
    expect((await engine.scoreResponses(SAMPLES)).every(Number.isFinite)).toBe(true);
    const tokB = tokenizer512(200_000);
    expect(tokenizerFingerprint(BpeTokenizer.fromJSON(JSON.parse(tokB)))).not.toBe(
      tokenizerFingerprint(BpeTokenizer.fromJSON(JSON.parse(tokA))),
    );
    await engine.loadModel(hubFiles('llama-tiny', tokB));
    await expect(engine.scoreResponses(SAMPLES)).rejects.toThrow(
      /reward model "rm-gpt2" was trained with another tokenizer than the loaded model's \(both have 512 tokens\)/,
    );
    await expect(engine.ppoCreate(ppo)).rejects.toThrow(/another tokenizer/);

    // The same tokenizer (another instance, read again) is the same fingerprint: usable again.
    await engine.loadModel(hubFiles('gpt2-tiny', tokA));
    expect((await engine.scoreResponses(SAMPLES)).every(Number.isFinite)).toBe(true);
    await engine.ppoCreate(ppo);
  }, 120_000);
});
