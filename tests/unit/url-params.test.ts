import { describe, expect, it } from 'vitest';
import { DEFAULT_PPO_CONFIG, validatePpoConfig, type PpoConfig } from '../../src/lib/rlhf/ppo-config';
import {
  PANEL_IDS,
  URL_PARAMS,
  defaultRewardSettings,
  defaultTrainSetup,
  parseUrlParams,
  serialiseSettings,
  type ShareableState,
} from '../../src/state/url-params';
import { describeSeries, trend } from '../../src/ui/charts/chart-utils';
import { DPO_SETTINGS } from '../../src/lib/rlhf/dpo-config';
import { SFT_SETTINGS } from '../../src/lib/rlhf/sft-config';
import { REWARD_SETTINGS } from '../../src/lib/rlhf/reward-config';
import { PPO_SETTINGS } from '../../src/lib/rlhf/ppo-config';
import { PRETRAIN_SETTINGS } from '../../src/lib/pretrain/config';
import { GRPO_SETTINGS } from '../../src/lib/rlhf/grpo-config';
import { RLOO_SETTINGS } from '../../src/lib/rlhf/rloo-config';

function defaults(): ShareableState {
  return {
    scenario: null,
    ppo: structuredClone(DEFAULT_PPO_CONFIG) as PpoConfig,
    train: defaultTrainSetup(),
    reward: defaultRewardSettings('head'),
    sft: { ...SFT_SETTINGS.defaults },
    dpo: { ...DPO_SETTINGS.defaults },
    run: { quick: false },
    pretrain: { ...PRETRAIN_SETTINGS.defaults },
    grpo: { ...GRPO_SETTINGS.defaults },
    rloo: { ...RLOO_SETTINGS.defaults },
    hide: [],
    presenter: false,
    backend: 'auto',
    inThread: false,
  };
}

describe('URL settings table', () => {
  it('covers every PPO hyper-parameter once, with unique names', () => {
    const names = URL_PARAMS.map((p) => p.name);
    expect(new Set(names).size).toBe(names.length);
    for (const k of Object.keys(DEFAULT_PPO_CONFIG)) expect(names).toContain(k);
  });

  it('the default setup serialises to an empty query', () => {
    expect(serialiseSettings(defaults())).toBe('');
  });

  it('round-trips a changed setup: serialise → parse gives the same values and no problems', () => {
    const s = defaults();
    s.ppo = {
      ...s.ppo,
      klCoef: 0.125,
      seed: 42,
      batchSize: 12,
      miniBatches: 3,
      lr: 3.3e-5,
      klEstimator: 'k3',
      whitenRewards: true,
      adaptiveKl: null,
      missingEosPenalty: 1.5,
      targetKlEarlyStop: 0.2,
    };
    s.train = { ...s.train, promptSet: 'stories', labeller: 'length', gold: 'none', evalEvery: 3 };
    s.reward = { ...defaultRewardSettings('full'), epochs: 9, seed: 7 };
    s.hide = ['ppo-advanced', 'data'];
    s.presenter = true;
    s.backend = 'wasm';
    const q = serialiseSettings(s);
    expect(q).toContain('hide=ppo-advanced,data');
    const { settings, problems } = parseUrlParams('?' + q);
    expect(problems).toEqual([]);
    expect(validatePpoConfig(settings.ppo)).toEqual(s.ppo);
    expect({ ...defaultTrainSetup(), ...settings.train }).toEqual(s.train);
    expect({ ...defaultRewardSettings(settings.reward.mode), ...settings.reward }).toEqual(s.reward);
    expect(settings.hide).toEqual(['ppo-advanced', 'data']);
    expect(settings.presenter).toBe(true);
    expect(settings.backend).toBe('wasm');
    // Only changed values are written.
    expect(q).not.toContain('gamma=');
  });

  it('writes every value when a scenario is set (the scenario may have changed the defaults)', () => {
    const s = { ...defaults(), scenario: 'sentiment-basic' };
    const q = serialiseSettings(s);
    expect(q.startsWith('scenario=sentiment-basic&')).toBe(true);
    expect(q).toContain('gamma=1');
    expect(parseUrlParams('?' + q).problems).toEqual([]);
  });

  it('a hostile URL gives one notice per bad value and keeps the defaults', () => {
    const { settings, problems } = parseUrlParams(
      '?seed=NaN&klCoef=-1&backend=%3Cscript%3E&scenario=%3Cimg%3E&hide=ppo-advanced,bogus&presenter=maybe&foo=1&lr=',
    );
    expect(settings.ppo).toEqual({});
    expect(settings.backend).toBeUndefined();
    expect(settings.scenario).toBeUndefined();
    expect(settings.hide).toEqual(['ppo-advanced']);
    expect(settings.presenter).toBe(false);
    expect(problems).toHaveLength(8);
    expect(problems.find((p) => p.startsWith('seed='))).toMatch(/seed="NaN" .*whole number.*default 0/);
    expect(problems.find((p) => p.startsWith('klCoef='))).toMatch(/klCoef="-1" .*≥ 0.*default 0\.5/);
    expect(problems.find((p) => p.startsWith('lr='))).toMatch(/default 0\.00005/);
    expect(problems.some((p) => p.includes('Unknown backend "<script>"'))).toBe(true);
    expect(problems.some((p) => p.includes('"foo"'))).toBe(true);
  });

  it('drops values that are fine alone but not together (miniBatches must divide batchSize)', () => {
    const a = parseUrlParams('?batchSize=12&miniBatches=5');
    expect(a.settings.ppo).toEqual({ batchSize: 12 });
    expect(a.problems).toHaveLength(1);
    expect(a.problems[0]).toMatch(/miniBatches="5"/);
    // The default miniBatches (2) does not divide 7: the URL's batch size goes.
    const b = parseUrlParams('?batchSize=7');
    expect(b.settings.ppo).toEqual({});
    expect(b.problems[0]).toMatch(/batchSize="7"/);
  });

  it('parses the PPO value forms: off, target,horizon, booleans, case', () => {
    const { settings, problems } = parseUrlParams(
      '?adaptiveKl=2,32&whitenRewards=yes&klEstimator=K3&missingEosPenalty=off&targetKlEarlyStop=0.5',
    );
    expect(problems).toEqual([]);
    expect(settings.ppo).toEqual({
      adaptiveKl: { target: 2, horizon: 32 },
      whitenRewards: true,
      klEstimator: 'k3',
      missingEosPenalty: null,
      targetKlEarlyStop: 0.5,
    });
    expect(parseUrlParams('?adaptiveKl=2').problems).toHaveLength(1);
    expect(parseUrlParams('?adaptiveKl=0,5').problems).toHaveLength(1);
  });

  it('every row of every settings table is a URL parameter (but the ones marked url: false), quick included', () => {
    const names = new Set(URL_PARAMS.map((p) => p.name));
    for (const [t, prefix] of [
      [PPO_SETTINGS, ''],
      [REWARD_SETTINGS, 'rm'],
      [SFT_SETTINGS, 'sft'],
      [DPO_SETTINGS, 'dpo'],
      [PRETRAIN_SETTINGS, 'pt'],
      [GRPO_SETTINGS, 'grpo'],
      [RLOO_SETTINGS, 'rloo'],
    ] as const)
      for (const k of t.keys as readonly string[]) {
        const table = t as unknown as typeof SFT_SETTINGS;
        const name = table.urlName(k as never);
        if ((table.spec(k as never) as { url?: unknown }).url === false) expect(name).toBeNull();
        else {
          expect(name!.startsWith(prefix)).toBe(true);
          expect(names.has(name!)).toBe(true);
        }
      }
    // The names the app has always used for the reward model.
    for (const n of ['rmMode', 'rmEpochs', 'rmLr', 'rmBatch', 'rmSeed', 'prompts', 'quick'])
      expect(names.has(n)).toBe(true);
    const { settings, problems } = parseUrlParams('?quick=1&sftEpochs=4&dpoBeta=0.3&dpoLossType=ipo&rmWeightDecay=0.2');
    expect(problems).toEqual([]);
    expect(settings.run).toEqual({ quick: true });
    expect(settings.sft).toEqual({ epochs: 4 });
    expect(settings.dpo).toEqual({ beta: 0.3, lossType: 'ipo' });
    expect(settings.reward).toEqual({ weightDecay: 0.2 });
  });

  it('numbers in other notations than plain decimal give a notice and the default', () => {
    const { settings, problems } = parseUrlParams(
      '?checkpointEvery=0x10&rmEpochs=0b11&lr=Infinity&seed=1e1&klCoef=.25',
    );
    expect(settings.train).toEqual({});
    expect(settings.reward).toEqual({});
    expect(settings.ppo).toEqual({ seed: 10, klCoef: 0.25 });
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(
      /^checkpointEvery="0x10" in the URL must be a whole number .* in plain decimal notation; using the default 5\.$/,
    );
    expect(problems[1]).toMatch(/^rmEpochs="0b11" .*plain decimal notation; using the default 60\.$/);
    expect(problems[2]).toMatch(/^lr="Infinity" .*plain decimal/);
  });

  it('the reward defaults follow the mode: a full-mode link writes only what differs from full mode', () => {
    const s = defaults();
    s.reward = { ...defaultRewardSettings('full'), epochs: 9 };
    expect(serialiseSettings(s)).toBe('rmMode=full&rmEpochs=9');
  });

  it('knows the panels a presenter can hide', () => {
    expect(PANEL_IDS).toEqual(expect.arrayContaining(['stages', 'ppo-advanced', 'data', 'backend']));
    expect(PANEL_IDS).not.toContain('model');
  });
});

describe('chart text summary', () => {
  const pts = (ys: number[]) => ys.map((y, i) => ({ x: i + 1, y }));
  it('names latest, min, max and trend', () => {
    expect(describeSeries('KL', pts([0.5, 0.2, 1, 2, 3]))).toBe(
      'KL: latest 3.000 at step 5; minimum 0.2000 at step 2, maximum 3.000 at step 5; rising over the last 5 points (5 in all).',
    );
    expect(describeSeries('KL', [])).toBe('KL: no data yet.');
  });
  it('trend: rising, falling, flat (noise within 5 % of the range is flat)', () => {
    expect(trend(pts([1, 2, 3, 4]))).toBe('rising');
    expect(trend(pts([4, 3, 2, 1]))).toBe('falling');
    // The last 20 points wobble by 0.1 after a jump of 10: flat.
    const wobble = Array.from({ length: 20 }, (_, i) => 5 + (i % 2) * 0.1);
    expect(trend(pts([0, 10, ...wobble]))).toBe('flat');
    expect(trend(pts([2]))).toBe('flat');
  });
});
