/**
 * The shipped model reproduces the validation loss its training log reports.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { useBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import { BpeTokenizer } from '../../src/lib/model/tokenizer';
import { configFromHF, loadSafetensorsIntoModel } from '../../src/lib/model/weights';
import { evaluateLoss, splitDocs, tokenizeDocs } from '../../src/lib/model/evaluate';

const MODEL = 'public/models/tiny-gpt';

describe('the shipped model', () => {
  it('scores the committed validation split within 0.01 of its training log', async () => {
    const tf = await useBackend('wasm');
    const card = JSON.parse(readFileSync(`${MODEL}/card.json`, 'utf8')) as { valLoss: number };
    const config = configFromHF(JSON.parse(readFileSync(`${MODEL}/config.json`, 'utf8')));
    const tok = BpeTokenizer.fromJSON(JSON.parse(readFileSync(`${MODEL}/tokenizer.json`, 'utf8')));
    const model = new GPT(config, { trainable: false });
    const weights = readFileSync(`${MODEL}/model.safetensors`);
    expect(weights.byteLength).toBeLessThanOrEqual(2.5e6);
    loadSafetensorsIntoModel(model, new Uint8Array(weights));
    const before = tf.memory().numTensors;
    const ids = tokenizeDocs(tok, splitDocs(readFileSync('static/corpus/val.txt', 'utf8')));
    const { loss } = await evaluateLoss(model, ids);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
    expect(Math.abs(loss - card.valLoss)).toBeLessThan(0.01);
    // Far below the 7.16 nats of a uniform guess over the 1,281-token vocabulary: the weights are trained.
    expect(loss).toBeLessThan(2);
  });
});
