/**
 * Model size presets for pretraining in the tab, each with its parameter count and memory from
 * the closed-form plan (../model/plan.ts). `tiny` is the bundled model's shape
 * (d128 × 4 layers × 4 heads, context 64: 965,504 parameters with its 1,281-token vocabulary).
 */
import { DEFAULT_LAYER_NORM_EPS, type GPTConfig } from '../model/config';
import { countParams } from '../model/plan';

export const PRESET_NAMES = ['micro', 'tiny', 'small', 'medium'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export interface Preset {
  name: PresetName;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  blockSize: number;
  help: string;
}

export const PRESETS: Readonly<Record<PresetName, Preset>> = {
  micro: {
    name: 'micro',
    nLayer: 1,
    nHead: 2,
    nEmbd: 32,
    blockSize: 32,
    help: 'A toy: trains in seconds, learns little.',
  },
  tiny: { name: 'tiny', nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, help: 'The bundled model’s shape.' },
  small: { name: 'small', nLayer: 6, nHead: 6, nEmbd: 192, blockSize: 128, help: 'About 3× tiny; wants a GPU.' },
  medium: { name: 'medium', nLayer: 8, nHead: 8, nEmbd: 256, blockSize: 256, help: 'About 7× tiny; wants a GPU.' },
};

/** The GPT config of a preset for a tokenizer of `vocabSize` tokens. */
export function presetConfig(name: PresetName, vocabSize: number): GPTConfig {
  const p = PRESETS[name];
  return {
    vocabSize,
    blockSize: p.blockSize,
    nLayer: p.nLayer,
    nHead: p.nHead,
    nEmbd: p.nEmbd,
    layerNormEps: DEFAULT_LAYER_NORM_EPS,
  };
}

export interface PresetSize {
  params: number;
  /** float32 weights. */
  weightsBytes: number;
  /** Weights, Adam's two moments and the gradients: four copies. */
  trainingBytes: number;
}

/** Parameters and memory of a preset (as `planModel` counts them). */
export function presetSize(name: PresetName, vocabSize: number): PresetSize {
  const params = countParams(presetConfig(name, vocabSize));
  return { params, weightsBytes: params * 4, trainingBytes: params * 16 };
}
