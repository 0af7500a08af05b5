/** The model layer: GPT, tokenizer, sampling, weights on disk, seeded RNG. */
export type { GPTConfig } from './config';
export { DEFAULT_LAYER_NORM_EPS } from './config';
export { GPT, KVCache, parameterShapes, type ForwardOutput, type GPTOptions } from './gpt';
export { generate, pickToken, type OnToken, type PickOptions, type SampleOptions, type SampleRow } from './sampling';
export {
  configFromHF,
  configToHF,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  loadSafetensorsIntoModel,
  modelTensors,
  normalizeGpt2Names,
  readSafetensors,
  saveModelSafetensors,
  writeSafetensors,
  type FloatDtype,
  type HFGpt2Config,
  type SafetensorsFile,
  type TensorRecord,
  type WriteDtype,
} from './weights';
export { ModelLoadError, WeightsFormatError } from './errors';
export { Rng, type RngState } from './rng';
export { BpeTokenizer, trainBpe, EOT_TOKEN, TokenizerError } from './tokenizer';
