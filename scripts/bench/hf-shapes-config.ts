/**
 * The two Hugging Face model shapes of issue #19's measurements, as their config.json files give
 * them (random weights are fine for timing): distilgpt2 (GPT-2, 82M) and SmolLM2-135M (Llama).
 * Shared by scripts/bench/hf-shapes.ts and lora-frozen-ab.ts.
 */
import type { GPTConfig } from '../../src/lib/model/config';

export const HF_SHAPES: Record<string, GPTConfig> = {
  /** Not a Hub model: a smoke test of the scripts in seconds. */
  tiny: { vocabSize: 300, blockSize: 128, nLayer: 2, nHead: 2, nEmbd: 32, layerNormEps: 1e-5 },
  distilgpt2: { vocabSize: 50257, blockSize: 1024, nLayer: 6, nHead: 12, nEmbd: 768, layerNormEps: 1e-5 },
  smollm2: {
    arch: 'llama',
    vocabSize: 49152,
    blockSize: 8192,
    nLayer: 30,
    nHead: 9,
    nKvHead: 3,
    nEmbd: 576,
    intermediateSize: 1536,
    ropeTheta: 100000,
    tieWordEmbeddings: true,
    layerNormEps: 1e-5,
  },
};
