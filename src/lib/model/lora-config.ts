/**
 * LoRA's settings rows (PEFT `LoraConfig` names, camel-cased), spread into every trainer's table,
 * and the parameter counts the UI shows. Plain data, no TF.js (the page imports it); the adapters
 * themselves are in ./lora.ts.
 */
import { settingsTable, type TableSpec } from '../settings/table';
import type { GPTConfig } from './config';
import { layerProjections } from './shapes';

/** The LoRA rows every trainer's settings table spreads (PEFT `LoraConfig` names, camel-cased). */
export interface LoraConfig {
  /** Train low-rank adapters on a frozen base instead of every weight. */
  lora: boolean;
  /** Rank r of the adapters (PEFT `r`). */
  loraR: number;
  /** α: the update is scaled by α / r (PEFT `lora_alpha`). */
  loraAlpha: number;
  /** Dropout on the adapter's input while training (PEFT `lora_dropout`). */
  loraDropout: number;
  /** Module names (or their last parts) that get adapters; null = the architecture's default. */
  loraTargetModules: string[] | null;
}

const MODULE_NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/;

export function targetsProblem(v: unknown): string | null {
  if (v === null) return null;
  if (!Array.isArray(v) || v.length === 0) return 'must be auto (null) or a list of module names';
  if (v.length > 64) return 'may name at most 64 modules';
  for (const m of v)
    if (typeof m !== 'string' || !MODULE_NAME.test(m))
      return `must be module names such as c_attn or q_proj, got ${JSON.stringify(m)}`;
  if (new Set(v).size !== v.length) return 'names a module twice';
  return null;
}

export const LORA_ROWS: TableSpec<LoraConfig> = {
  lora: {
    label: 'LoRA',
    kind: 'boolean',
    default: false,
    help: 'Train low-rank adapters (Hu et al. 2021) on a frozen base model: the reference is the base with adapters off, so no second copy of the weights is held.',
  },
  loraR: {
    label: 'LoRA rank r',
    kind: 'number',
    int: true,
    min: 1,
    max: 1024,
    default: 8,
    help: "Rank of each adapter (PEFT's r): ΔW = B·A with A [r, in] and B [out, r].",
  },
  loraAlpha: {
    label: 'LoRA α',
    kind: 'number',
    min: 0,
    minExclusive: true,
    max: 1e4,
    default: 16,
    help: "The update is scaled by α / r (PEFT's lora_alpha).",
  },
  loraDropout: {
    label: 'LoRA dropout',
    kind: 'number',
    min: 0,
    max: 1,
    maxExclusive: true,
    default: 0.05,
    help: "Dropout on the adapters' input while training (PEFT's lora_dropout).",
  },
  loraTargetModules: {
    label: 'LoRA target modules',
    kind: 'custom',
    default: null,
    check: targetsProblem,
    format: (v) => (v === null ? 'auto' : v.join(',')),
    parse: (raw) => {
      const t = raw.trim();
      if (t === '' || /^(auto|null|none)$/i.test(t)) return null;
      return t.split(',').map((s) => s.trim());
    },
    help: "Projections that get adapters, by module name as PEFT's target_modules (auto: c_attn for GPT-2; q_proj, v_proj for Llama).",
  },
};

/** The LoRA rows alone (for code that takes only them, e.g. the adapter of a loaded model). */
export const LORA_SETTINGS = settingsTable<LoraConfig>(LORA_ROWS, { what: 'LoRA', urlPrefix: '' });

/** Just the LoRA fields of a trainer's config. */
/** Whether a trainer's config carries the LoRA rows (online DPO's does not, yet). */
export function hasLoraRows(c: object): c is LoraConfig {
  return 'lora' in c && 'loraR' in c;
}

export function loraOf(c: LoraConfig): LoraConfig {
  return {
    lora: c.lora,
    loraR: c.loraR,
    loraAlpha: c.loraAlpha,
    loraDropout: c.loraDropout,
    loraTargetModules: c.loraTargetModules,
  };
}

/** The shapes the counts need (a GPT config). */
type Shape = Pick<GPTConfig, 'nLayer' | 'nEmbd'> &
  Partial<Pick<GPTConfig, 'arch' | 'nHead' | 'nKvHead' | 'intermediateSize'>>;

/**
 * Parameters the adapters of `c` add to a model of this shape (r·(in + out) per targeted
 * projection, PEFT's matching: the name or its last parts; null targets are PEFT's defaults for
 * the architecture), or null when a target matches none.
 */
export function loraParamCount(shape: Shape, c: Pick<LoraConfig, 'loraR' | 'loraTargetModules'>): number | null {
  const targets = c.loraTargetModules ?? (shape.arch === 'llama' ? ['q_proj', 'v_proj'] : ['c_attn']);
  const projections = layerProjections(shape);
  let n = 0;
  for (const [name, fin, fout] of projections)
    if (targets.some((t) => name === t || name.endsWith('.' + t))) n += c.loraR * (fin + fout);
  const unmatched = targets.some((t) => !projections.some(([name]) => name === t || name.endsWith('.' + t)));
  return unmatched ? null : n * shape.nLayer;
}
