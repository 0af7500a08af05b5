/**
 * The reward model in the hand-off bundle (src/lib/data/handoff-reward.ts): a reward model
 * trained by the real engine on the shipped model is exported as GPT2ForSequenceClassification
 * (names, shapes, config fields, bias and normalisation folded into ln_f.bias), with TRL GRPO /
 * RLOO configs carrying the tab's settings; and (Debian's PyTorch) scripts/golden/check_handoff.py
 * runs HF's published forward and pooling on a right-padded batch and gets the tab's scores for
 * 'last' pooling, and says by how much HF differs for 'mean' pooling.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { engineWithBundledModel } from './bundled-engine';
import {
  buildHandoffZip,
  HANDOFF_FILES,
  HANDOFF_REWARD_FILES,
  handoffFiles,
  HandoffError,
} from '../../src/lib/data/handoff';
import { promptsJsonl, rewardModelToHf, seqClsShapes, yamlNumber } from '../../src/lib/data/handoff-reward';
import type { TrainingPair } from '../../src/lib/data/records';
import { readZip } from '../../src/lib/data/zip';
import { BpeTokenizer } from '../../src/lib/model/tokenizer';
import { readSafetensors } from '../../src/lib/model/weights';
import { rewardInputIds, type RewardModelState } from '../../src/lib/rlhf/reward-model';
import { DEFAULT_GRPO_CONFIG, type GrpoConfig } from '../../src/lib/rlhf/grpo-config';
import { DEFAULT_RLOO_CONFIG, type RlooConfig } from '../../src/lib/rlhf/rloo-config';

const PYTHON = '/usr/bin/python3';
const dec = new TextDecoder();
const PROMPTS = ['The movie was', 'The food was', 'The book was', 'The show was', 'My day was'];
const PAIRS: TrainingPair[] = PROMPTS.flatMap((prompt) =>
  [0, 1, 2].map((i) => ({ prompt, chosen: ` great great${' !'.repeat(i)}`, rejected: ` awful${' .'.repeat(i)}` })),
);
/** Texts of different lengths, so the batch is right-padded. */
const SAMPLES = [
  { prompt: 'The movie was', response: ' great great' },
  { prompt: 'The movie was', response: ' awful, slow and far too long for me.' },
  { prompt: 'Once upon a time,', response: ' a fox' },
  { prompt: 'The food at this restaurant', response: ' was lovely' },
];

function hasTorch(): boolean {
  if (!existsSync(PYTHON)) return false;
  try {
    execFileSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const cache = new Map<string, ReturnType<typeof train>>();
/** One engine and reward model per pooling, shared by the tests (training takes a while on 2 busy cores). */
function trained(pooling: 'last' | 'mean') {
  if (!cache.has(pooling)) cache.set(pooling, train(pooling));
  return cache.get(pooling)!;
}

async function train(pooling: 'last' | 'mean') {
  const engine = await engineWithBundledModel();
  const { summary, state } = await engine.trainRewardModel('rm', {
    id: `rm-${pooling}`,
    name: `RM ${pooling}`,
    pairs: PAIRS,
    recordIds: [],
    mode: 'head',
    pooling,
    epochs: 30,
    valFraction: 0.4,
    seed: 1,
  });
  const model = await engine.exportModel('base');
  return { engine, summary, state, model };
}

function writeBundle(files: Map<string, Uint8Array>): string {
  const dir = mkdtempSync(join(tmpdir(), 'handoff-rm-'));
  for (const [name, data] of files) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
  return dir;
}

describe('reward model in the hand-off bundle', () => {
  it('exports GPT2ForSequenceClassification: names, shapes, config, folded bias, TRL configs', async () => {
    const { state, model, summary } = await trained('last');
    expect(state.weights.has('score.bias')).toBe(true);
    const grpo: GrpoConfig = {
      ...DEFAULT_GRPO_CONFIG,
      numGenerations: 8,
      batchSize: 32,
      epsilonHigh: 0.28,
      learningRate: 1e-7,
      lossType: 'dr_grpo',
      scaleRewards: 'none',
    };
    const rloo: RlooConfig = { ...DEFAULT_RLOO_CONFIG, beta: 0.02, normalizeAdvantages: true };
    const zip = buildHandoffZip({
      pairs: PAIRS,
      recordCount: PAIRS.length,
      model,
      rewardModel: { name: summary.name, state },
      prompts: ['The movie was ', 'The movie was', 'Say "hi"'],
      grpo,
      rloo,
      createdAt: new Date(2024, 4, 17),
    });
    const files = readZip(zip);
    expect([...files.keys()]).toEqual([...HANDOFF_FILES, ...HANDOFF_REWARD_FILES]);

    // config.json: what AutoModelForSequenceClassification and TRL read.
    const cfg = JSON.parse(dec.decode(files.get('reward_model/config.json'))) as Record<string, unknown>;
    expect(cfg).toMatchObject({
      model_type: 'gpt2',
      architectures: ['GPT2ForSequenceClassification'],
      num_labels: 1,
      id2label: { '0': 'LABEL_0' },
      pad_token_id: 1280,
      n_embd: state.config.nEmbd,
      n_layer: state.config.nLayer,
      vocab_size: state.config.vocabSize,
      n_positions: state.config.blockSize,
      activation_function: 'gelu_new',
      rlhf_playground: { pooling: 'last', exact: true, normalisation: state.normalisation },
    });

    // Weights: exactly the class's state_dict names, score.weight [1, C] with no bias.
    const st = readSafetensors(files.get('reward_model/model.safetensors')!);
    const shapes = seqClsShapes(state.config);
    expect([...st.tensors.keys()].sort()).toEqual([...shapes.keys()].sort());
    expect(st.tensors.has('score.bias')).toBe(false);
    expect(st.tensors.get('score.weight')!.shape).toEqual([1, state.config.nEmbd]);
    expect(st.metadata.format).toBe('pt');
    for (const [name, t] of st.tensors) {
      expect(t.dtype).toBe('F32');
      expect(t.shape).toEqual(shapes.get(name));
      if (name !== 'score.weight' && name !== 'transformer.ln_f.bias') expect(t.data).toEqual(state.weights.get(name));
    }
    // The fold: score.weight = gain · w, and score.weight · (β' − β) = gain · b + bias.
    const { gain, bias } = state.normalisation;
    const w = state.weights.get('score.weight')!;
    const w2 = st.tensors.get('score.weight')!.data;
    w2.forEach((x, i) => expect(x).toBeCloseTo(gain * w[i], 6));
    const beta = state.weights.get('transformer.ln_f.bias')!;
    const beta2 = st.tensors.get('transformer.ln_f.bias')!.data;
    const shift = w2.reduce((a, x, i) => a + x * (beta2[i] - beta[i]), 0);
    expect(shift).toBeCloseTo(gain * state.weights.get('score.bias')![0] + bias, 4);
    expect(gain).not.toBe(1); // the normalisation is real, so folding it is tested

    // Tokenizer files are the policy's, under reward_model/.
    for (const f of ['tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'])
      expect(files.get(`reward_model/${f}`)).toEqual(files.get(`model/${f}`));

    // Prompts: one per distinct prompt, trailing spaces held back, <|endoftext|> first.
    expect(dec.decode(files.get('prompts/prompts.jsonl'))).toBe(
      '{"prompt":"<|endoftext|>The movie was"}\n{"prompt":"<|endoftext|>Say \\"hi\\""}\n',
    );

    // TRL configs: the tab's settings in TRL's names; the reward model as reward_model_name_or_path.
    const g = dec.decode(files.get('configs/trl_grpo.yaml'));
    for (const line of [
      'model_name_or_path: ./model',
      'reward_model_name_or_path: ./reward_model',
      'dataset_name: ./prompts',
      'num_generations: 8',
      'per_device_train_batch_size: 32',
      `max_completion_length: ${grpo.maxCompletionLength}`,
      'temperature: 0.7',
      'beta: 0.04',
      'epsilon: 0.2',
      'epsilon_high: 0.28',
      'num_iterations: 1',
      'mask_truncated_completions: false',
      'learning_rate: 1.0e-7',
      'max_grad_norm: 1',
      'seed: 0',
      'scale_rewards: none',
      'loss_type: dr_grpo',
    ])
      expect(g).toMatch(new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    const r = dec.decode(files.get('configs/trl_rloo.yaml'));
    expect(r).toMatch(/^reward_model_name_or_path: \.\/reward_model$/m);
    expect(r).toMatch(/^beta: 0\.02$/m);
    expect(r).toMatch(/^normalize_advantages: true$/m);
    expect(r).toMatch(/^# epsilon_high: off/m);
    expect(r).not.toMatch(/^loss_type/m);

    const readme = dec.decode(files.get('README.md'));
    for (const s of [
      'trl grpo --config configs/trl_grpo.yaml',
      'trl rloo --config configs/trl_rloo.yaml',
      'GPT2ForSequenceClassification',
      '**Exact.**',
    ])
      expect(readme).toContain(s);
    expect(readme).not.toContain('Not the tab');
  });

  it('mean pooling: exported, and the README and config say HF differs; bad inputs are HandoffErrors', async () => {
    const { state, model, summary } = await trained('mean');
    const files = new Map(
      handoffFiles({
        pairs: [],
        recordCount: 0,
        model,
        rewardModel: { name: summary.name, state },
        prompts: ['A'],
      }).map((e) => [e.name, typeof e.data === 'string' ? new TextEncoder().encode(e.data) : e.data]),
    );
    const cfg = JSON.parse(dec.decode(files.get('reward_model/config.json'))) as Record<string, unknown>;
    expect(cfg.rlhf_playground).toMatchObject({ pooling: 'mean', exact: false });
    expect(dec.decode(files.get('README.md'))).toMatch(
      /Not the tab's scores from the HF class alone.*mean\s+> pooling/s,
    );
    // The TRL configs use the bundle's reward function (mean pooling), not the HF class.
    for (const f of ['configs/trl_grpo.yaml', 'configs/trl_rloo.yaml']) {
      const y = dec.decode(files.get(f));
      expect(y).toMatch(/^reward_funcs:\n {2}- rlhf_reward\.reward_model$/m);
      expect(y).not.toMatch(/^reward_model_name_or_path/m);
    }
    expect(dec.decode(files.get('rlhf_reward.py'))).toMatch(/^def reward_model\(prompts, completions, \*\*kwargs\):$/m);

    const input = { pairs: [], recordCount: 0, model, rewardModel: { name: 'x', state } };
    expect(() => handoffFiles({ ...input, prompts: [] })).toThrow(/No prompts/);
    const otherVocab: RewardModelState = { ...state, config: { ...state.config, vocabSize: 999 } };
    expect(() => handoffFiles({ ...input, prompts: ['A'], rewardModel: { name: 'x', state: otherVocab } })).toThrow(
      HandoffError,
    );
    const missing = new Map(state.weights);
    missing.delete('transformer.h.0.attn.c_attn.weight');
    expect(() => rewardModelToHf({ name: 'x', state: { ...state, weights: missing } }, 1280, 1281)).toThrow(
      /lacks transformer\.h\.0\.attn\.c_attn\.weight/,
    );
  });

  it('YAML numbers are floats to PyYAML; prompts are deduplicated', () => {
    expect(yamlNumber(1e-7)).toBe('1.0e-7');
    expect(yamlNumber(5e-5)).toBe('0.00005');
    expect(yamlNumber(1.5e-7)).toBe('1.5e-7');
    expect(yamlNumber(0.7)).toBe('0.7');
    expect(promptsJsonl(['a', 'a\t', 'b'], '<|endoftext|>').split('\n')).toHaveLength(3);
  });

  it.runIf(hasTorch())(
    "check_handoff.py: HF's forward and pooling give the tab's scores ('last'), and report the gap ('mean')",
    async () => {
      for (const pooling of ['last', 'mean'] as const) {
        const { engine, state, model, summary } = await trained(pooling);
        const files = readZip(
          buildHandoffZip({
            pairs: PAIRS,
            recordCount: 15,
            model,
            rewardModel: { name: summary.name, state },
            prompts: PROMPTS,
          }),
        );
        const dir = writeBundle(files);
        try {
          const tok = BpeTokenizer.fromJSON(JSON.parse(model.tokenizer));
          const ids = SAMPLES.map((s) => rewardInputIds(tok, s.prompt, s.response));
          // TRL scores prompts.jsonl's "<|endoftext|>" + prompt + completion as text: the same ids here.
          for (const [i, s] of SAMPLES.entries())
            expect(tok.encode(tok.eotToken + s.prompt + s.response)).toEqual(ids[i]);
          const scores = await engine.scoreResponses(SAMPLES);
          writeFileSync(join(dir, 'reward.json'), JSON.stringify({ ids, scores }));
          const run = () =>
            execFileSync(
              PYTHON,
              ['scripts/golden/check_handoff.py', dir, '--expect-reward', join(dir, 'reward.json')],
              {
                encoding: 'utf8',
              },
            );
          const out = run();
          if (pooling === 'last') {
            expect(out).toMatch(
              /^ok: reward model: 53 tensors; GPT2ForSequenceClassification scores match the app within/m,
            );
            expect(out).toMatch(/^ok: rlhf_reward\.py \(last pooling\) reproduces the app within/m);
            // It can fail: scores that are not the tab's are caught.
            writeFileSync(
              join(dir, 'reward.json'),
              JSON.stringify({ ids, scores: scores.map((x, i) => (i === 1 ? x + 0.01 : x)) }),
            );
            expect(run).toThrow(/scores differ from the app's/);
          } else {
            const m =
              /mean pooling reproduces the app within (\S+); GPT2ForSequenceClassification \(last token\) differs from the app by up to (\S+)/.exec(
                out,
              );
            expect(m).not.toBeNull();
            expect(Number(m![1])).toBeLessThan(2e-4);
            expect(Number(m![2])).toBeGreaterThan(1e-3);
            // The reward function the TRL configs use pools as the tab does.
            expect(out).toMatch(/^ok: rlhf_reward\.py \(mean pooling\) reproduces the app within/m);
            // It can fail: a reward function that reads the last token instead is caught.
            const py = join(dir, 'rlhf_reward.py');
            writeFileSync(py, readFileSync(py, 'utf8').replace('if how == "mean":', 'if how == "MEAN":'));
            expect(run).toThrow(/rlhf_reward\.py \(mean pooling\) differs from the app's scores/);
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
    },
    120_000,
  );
});
