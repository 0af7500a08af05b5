import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ScenarioError,
  validateFirstScreen,
  validateScenario,
  validateScenarioIndex,
  type Scenario,
} from '../../src/lib/data/scenarios';
import { labellerFromConfig } from '../../src/lib/rlhf/labellers';
import { validatePpoConfig } from '../../src/lib/rlhf/ppo-config';

const DIR = join(__dirname, '../../static/scenarios');
const read = (name: string): unknown => JSON.parse(readFileSync(join(DIR, name), 'utf8'));
const index = validateScenarioIndex(read('index.json'));
const shipped: Scenario[] = index.map((id) => validateScenario(read(`${id}.json`), `${id}.json`));

describe('shipped scenarios', () => {
  it('index.json lists every scenario file exactly once, and each file is named by its id', () => {
    const files = readdirSync(DIR)
      .filter((f) => f.endsWith('.json') && f !== 'index.json' && f !== 'first-screen.json')
      .map((f) => f.replace(/\.json$/, ''))
      .sort();
    expect([...index].sort()).toEqual(files);
    expect(new Set(index).size).toBe(index.length);
    for (const [i, s] of shipped.entries()) expect(s.id).toBe(index[i]);
  });

  it('covers the six scenarios of the issue and the over-optimisation preset, with one human scenario and β sliders on reward hacking and over-optimisation', () => {
    expect(shipped).toHaveLength(7);
    expect(shipped.filter((s) => s.human).map((s) => s.id)).toEqual(['your-own-taste']);
    expect(shipped.filter((s) => s.betaSlider).map((s) => s.id)).toEqual(['reward-hacking', 'over-optimisation']);
    const kinds = new Set(shipped.map((s) => s.labeller.kind));
    for (const k of ['sentiment', 'length', 'keyword'] as const) expect(kinds.has(k)).toBe(true);
  });

  it.each(shipped.map((s) => [s.id, s] as const))('%s: settings a run can use', (_, s) => {
    const prompts = (read(`../prompts/${s.prompts}.json`) as { prompts: string[] }).prompts;
    expect(prompts.length).toBeGreaterThan(4);
    const cfg = validatePpoConfig({ ...s.ppo, seed: s.seed });
    expect(cfg.seed).toBe(s.seed);
    // Prompt plus response must fit the bundled model's 64-token context.
    expect(cfg.maxNewTokens).toBeLessThanOrEqual(48);
    expect(s.labels).toBeGreaterThanOrEqual(8); // the reward trainer needs 8 pairs at least
    // The labeller distinguishes texts (a scenario whose labeller ties everything cannot train).
    const l = labellerFromConfig(s.labeller);
    const a = ' was so wonderful, thank you so much! It was really great and I loved it.';
    const b = ' now.';
    expect(l.score(a, prompts[0])).not.toBe(l.score(b, prompts[0]));
  });

  it('the reward-hacking proxy loves exclamation marks', () => {
    const s = shipped.find((x) => x.id === 'reward-hacking')!;
    const l = labellerFromConfig(s.labeller);
    expect(l.score('Great!!!', '')).toBe(l.score('Great', '') + 3);
    expect(s.gold).toBe('sentiment');
  });
});

describe('first screen', () => {
  const fs = validateFirstScreen(read('first-screen.json'));
  const sc = shipped.find((s) => s.id === fs.scenario)!;

  it('shows the first scenario', () => {
    expect(fs.scenario).toBe(index[0]);
    expect(fs.samples.length).toBeGreaterThanOrEqual(4);
  });

  it("scores are the scenario labeller's, and the means match the samples", () => {
    const l = labellerFromConfig(sc.labeller);
    for (const s of fs.samples) {
      expect(s.baseScore).toBe(l.score(s.base, s.prompt));
      expect(s.policyScore).toBe(l.score(s.policy, s.prompt));
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(fs.baseMean).toBeCloseTo(mean(fs.samples.map((s) => s.baseScore)), 10);
    expect(fs.policyMean).toBeCloseTo(mean(fs.samples.map((s) => s.policyScore)), 10);
  });

  it('rejects a broken file, naming the field', () => {
    const bad = { ...(read('first-screen.json') as object), samples: [{ prompt: 'x', base: 'y' }] };
    expect(() => validateFirstScreen(bad)).toThrow(/samples\[0\]\.policy/);
  });
});

describe('validateScenario rejects bad files with the field named', () => {
  const good = read(`${index[0]}.json`) as Record<string, unknown>;
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['missing title', { title: undefined }, 'title', /"title" must be non-empty text/],
    ['bad id', { id: 'Has Spaces' }, 'id', /lower-case/],
    ['unknown prompt set', { prompts: 'poems' }, 'prompts', /must be one of reviews, stories, requests/],
    ['bad labeller', { labeller: { kind: 'oracle' } }, 'labeller', /"labeller" unknown kind "oracle"/],
    ['labeller knob', { labeller: { kind: 'sentiment', noise: 2 } }, 'labeller', /noise must be a number/],
    ['labels not a number', { labels: 'many' }, 'labels', /"labels" must be a whole number from 2/],
    ['human not boolean', { human: 'yes' }, 'human', /true or false/],
    [
      'rm mode',
      { rewardModel: { mode: 'huge', epochs: 3, learningRate: 0.1 } },
      'rewardModel.mode',
      /'head' or 'full'/,
    ],
    [
      'rm unknown key',
      { rewardModel: { mode: 'head', epochs: 3, learningRate: 0.1, lr: 1 } },
      'rewardModel.lr',
      /not a reward-model setting/,
    ],
    ['rm lr', { rewardModel: { mode: 'head', epochs: 3, learningRate: 0 } }, 'rewardModel.learningRate', /> 0/],
    [
      'rm early stopping',
      { rewardModel: { mode: 'head', epochs: 3, learningRate: 0.1, earlyStopping: 'yes' } },
      'rewardModel.earlyStopping',
      /true or false/,
    ],
    [
      'rm weight decay',
      { rewardModel: { mode: 'full', epochs: 3, learningRate: 1e-4, weightDecay: 2 } },
      'rewardModel.weightDecay',
      /≥ 0 and ≤ 1/,
    ],
    ['ppo field', { ppo: { klCoef: -1 } }, 'ppo.klCoef', /"ppo.klCoef" must be a number/],
    ['ppo typo', { ppo: { kl_coef: 0.1 } }, 'ppo', /unknown setting kl_coef/],
    ['ppo seed', { ppo: { seed: 3 } }, 'ppo.seed', /scenario's "seed"/],
    ['iterations', { iterations: 0 }, 'iterations', /"iterations" must be a whole number from 1/],
    ['seed', { seed: 1.5 }, 'seed', /"seed" must be a whole number/],
    ['gold', { gold: 'oracle' }, 'gold', /labeller kind or 'none'/],
    ['unknown field', { colour: 'red' }, 'colour', /"colour" is not a scenario field/],
    ['evalEvery', { evalEvery: 0 }, 'evalEvery', /"evalEvery" must be a whole number from 1 to 1000/],
    ['evalEvery text', { evalEvery: '5' }, 'evalEvery', /"evalEvery" must be a whole number/],
    ['evalSamples', { evalSamples: 33 }, 'evalSamples', /"evalSamples" must be a whole number from 1 to 32/],
    ['evalSamples fraction', { evalSamples: 1.5 }, 'evalSamples', /"evalSamples" must be a whole number/],
  ];
  it.each(cases)('%s', (_, patch, field, msg) => {
    const x = { ...good, ...patch };
    let err: unknown;
    try {
      validateScenario(x, 'bad.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ScenarioError);
    expect((err as ScenarioError).field).toBe(field);
    expect((err as Error).message).toMatch(/^bad\.json: /);
    expect((err as Error).message).toMatch(msg);
  });

  it('rejects non-objects and a bad index', () => {
    expect(() => validateScenario([], 'x.json')).toThrow(/x\.json: must be a JSON object/);
    expect(() => validateScenarioIndex({ scenarios: ['ok', 'Not OK'] })).toThrow(/scenarios\[1\]/);
    expect(() => validateScenarioIndex({})).toThrow(ScenarioError);
  });

  it('accepts the good file and returns a clean copy with defaults untouched', () => {
    const s = validateScenario(good);
    expect(s).toEqual(validateScenario(JSON.parse(JSON.stringify(good))));
    expect(s.labeller).toEqual(labellerFromConfig(good.labeller).config);
  });

  it('evalEvery and evalSamples are optional, kept when given and absent otherwise', () => {
    expect('evalEvery' in validateScenario(good)).toBe(false);
    expect('evalSamples' in validateScenario(good)).toBe(false);
    const s = validateScenario({ ...good, evalEvery: 5, evalSamples: 4 });
    expect(s.evalEvery).toBe(5);
    expect(s.evalSamples).toBe(4);
  });
});

describe('the over-optimisation preset (Gao et al. 2022)', () => {
  const s = shipped.find((x) => x.id === 'over-optimisation')!;
  it('is the pipeline.ts run: a gold reader who dislikes repetition, 20 noisy labels, a head-only proxy, no KL leash', () => {
    expect(s).toBeDefined();
    expect(s.human).toBe(false);
    expect(s.labeller).toMatchObject({ kind: 'sentiment', scoring: 'distinct', noise: 0.1 });
    // Gold is the labeller itself without noise (the runner's default when `gold` is left out).
    expect(s.gold).toBeUndefined();
    expect(s.labels).toBe(20);
    // The proxy keeps the epoch its few held-out pairs liked best (head mode's default fits to the end,
    // which makes a better proxy and a gold peak in fewer seeds).
    expect(s.rewardModel).toMatchObject({ mode: 'head', pooling: 'mean', earlyStopping: true });
    const cfg = validatePpoConfig({ ...s.ppo, seed: s.seed });
    expect(cfg.klCoef).toBe(0);
    expect(cfg.adaptiveKl).toBeNull();
    expect(cfg.lr).toBe(5e-4);
    expect(s.betaSlider).toBe(true);
    // Evaluations along the run, many samples per prompt, and the last iteration evaluated.
    expect(s.evalEvery).toBe(2);
    expect(s.evalSamples).toBe(32);
    expect(s.iterations % s.evalEvery!).toBe(0);
    expect(s.iterations / s.evalEvery!).toBeGreaterThanOrEqual(8);
    expect(s.explain).toMatch(/Gao/);
    expect(s.explain).toMatch(/√KL/);
  });
});
