/**
 * The parameter names and shapes of both architectures, in one place and without TF.js, so the
 * page (LoRA counts, the hand-off bundle) and the worker (the GPT itself) read the same table.
 *
 * - GPT-2: Hugging Face `GPT2LMHeadModel` names, Conv1D weights [in, out] (as HF stores them);
 *   the LM head is tied to `wte` and has no tensor of its own.
 * - Llama (as SmolLM2 uses it): `LlamaForCausalLM` names. Projections are held here as [in, out]
 *   (x @ W), the transpose of HF's nn.Linear [out, in] (`isHfTransposed`); an untied head is
 *   `lm_head.weight` [C, V] here.
 *
 * tests/unit/shapes.test.ts builds the real GPT (./gpt.ts) of each architecture and checks its
 * parameters against this table.
 */
import type { GPTConfig } from './config';

/** The fields of a config the shapes depend on. */
export type ShapeConfig = Pick<GPTConfig, 'vocabSize' | 'blockSize' | 'nLayer' | 'nHead' | 'nEmbd'> &
  Partial<Pick<GPTConfig, 'arch' | 'nKvHead' | 'intermediateSize' | 'tieWordEmbeddings'>>;

/** One projection of a block: its name under the layer (`attn.c_attn`, `self_attn.q_proj`), in and out widths. */
export type Projection = [name: string, fin: number, fout: number];

/** Key/value heads (nHead when absent). */
export function kvHeadsOf(c: Pick<GPTConfig, 'nHead'> & Partial<Pick<GPTConfig, 'nKvHead'>>): number {
  return c.nKvHead ?? c.nHead;
}

/** Whether the LM head is the token embedding: always for GPT-2; for Llama when `tieWordEmbeddings`. */
export function isTiedHead(c: Partial<Pick<GPTConfig, 'arch' | 'tieWordEmbeddings'>>): boolean {
  return (c.arch ?? 'gpt2') === 'gpt2' || c.tieWordEmbeddings === true;
}

/** The prefix of block `i`'s parameters. */
export function layerPrefix(c: Partial<Pick<GPTConfig, 'arch'>>, i: number): string {
  return c.arch === 'llama' ? `model.layers.${i}.` : `transformer.h.${i}.`;
}

/**
 * One block's projections (name, in, out): GPT-2's Conv1D (fused qkv, 4C MLP) or Llama's
 * (grouped-query k and v, SwiGLU's gate, up and down).
 */
export function layerProjections(
  c: Pick<GPTConfig, 'nEmbd'> & Partial<Pick<GPTConfig, 'arch' | 'nHead' | 'nKvHead' | 'intermediateSize'>>,
): Projection[] {
  const C = c.nEmbd;
  if (c.arch === 'llama') {
    const nHead = c.nHead ?? 1;
    const kv = (C / nHead) * (c.nKvHead ?? nHead);
    const I = c.intermediateSize ?? 4 * C;
    return [
      ['self_attn.q_proj', C, C],
      ['self_attn.k_proj', C, kv],
      ['self_attn.v_proj', C, kv],
      ['self_attn.o_proj', C, C],
      ['mlp.gate_proj', C, I],
      ['mlp.up_proj', C, I],
      ['mlp.down_proj', I, C],
    ];
  }
  return [
    ['attn.c_attn', C, 3 * C],
    ['attn.c_proj', C, C],
    ['mlp.c_fc', C, 4 * C],
    ['mlp.c_proj', 4 * C, C],
  ];
}

/**
 * Every parameter of the model, name → shape as held in the app (projections [in, out]), in the
 * fixed order the GPT initialises them (GPT-2's init draws its numbers in this order).
 */
export function parameterShapes(config: ShapeConfig): Map<string, number[]> {
  const { vocabSize: V, blockSize: T, nEmbd: C, nLayer } = config;
  const llama = config.arch === 'llama';
  const s = new Map<string, number[]>();
  const projections = layerProjections(config);
  if (llama) {
    s.set('model.embed_tokens.weight', [V, C]);
    for (let i = 0; i < nLayer; i++) {
      const h = layerPrefix(config, i);
      s.set(h + 'input_layernorm.weight', [C]);
      for (const [name, fin, fout] of projections.slice(0, 4)) s.set(`${h}${name}.weight`, [fin, fout]);
      s.set(h + 'post_attention_layernorm.weight', [C]);
      for (const [name, fin, fout] of projections.slice(4)) s.set(`${h}${name}.weight`, [fin, fout]);
    }
    s.set('model.norm.weight', [C]);
    if (!isTiedHead(config)) s.set('lm_head.weight', [C, V]);
    return s;
  }
  s.set('transformer.wte.weight', [V, C]);
  s.set('transformer.wpe.weight', [T, C]);
  for (let i = 0; i < nLayer; i++) {
    const h = layerPrefix(config, i);
    const [cAttn, cProj, cFc, mProj] = projections;
    s.set(h + 'ln_1.weight', [C]);
    s.set(h + 'ln_1.bias', [C]);
    for (const [name, fin, fout] of [cAttn, cProj]) {
      s.set(`${h}${name}.weight`, [fin, fout]);
      s.set(`${h}${name}.bias`, [fout]);
    }
    s.set(h + 'ln_2.weight', [C]);
    s.set(h + 'ln_2.bias', [C]);
    for (const [name, fin, fout] of [cFc, mProj]) {
      s.set(`${h}${name}.weight`, [fin, fout]);
      s.set(`${h}${name}.bias`, [fout]);
    }
  }
  s.set('transformer.ln_f.weight', [C]);
  s.set('transformer.ln_f.bias', [C]);
  return s;
}

/**
 * Whether a parameter is held in the app as the transpose of its Hugging Face tensor: Llama's
 * nn.Linear weights ([out, in] in HF files, [in, out] here). GPT-2's Conv1D needs none.
 */
export function isHfTransposedName(c: Partial<Pick<GPTConfig, 'arch'>>, name: string): boolean {
  return c.arch === 'llama' && (name.endsWith('_proj.weight') || name === 'lm_head.weight');
}

/**
 * The trunk's tensors as Hugging Face stores them (`GPT2Model` / `LlamaModel` under their
 * `*ForCausalLM` / `*ForSequenceClassification` names): `parameterShapes` less any LM head, with
 * Llama's projections [out, in].
 */
export function hfTrunkShapes(config: ShapeConfig): Map<string, number[]> {
  const s = new Map<string, number[]>();
  for (const [name, shape] of parameterShapes(config)) {
    if (name === 'lm_head.weight') continue;
    s.set(name, isHfTransposedName(config, name) ? [shape[1], shape[0]] : shape);
  }
  return s;
}
