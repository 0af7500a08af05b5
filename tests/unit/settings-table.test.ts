/**
 * The settings tables (src/lib/settings/table.ts and each trainer's): one default, range and help
 * per setting; validation names every bad field; live updates refuse fixed settings; URL text is
 * plain decimal notation only; the defaults the layers used to disagree on are now one.
 */
import { describe, expect, it } from 'vitest';
import { DPO_SETTINGS } from '../../src/lib/rlhf/dpo-config';
import { DEFAULT_DPO_CONFIG, resolveDpoConfig } from '../../src/lib/rlhf/dpo-train';
import { PPO_SETTINGS, PpoConfigError } from '../../src/lib/rlhf/ppo-config';
import { REWARD_SETTINGS, rewardDefaults } from '../../src/lib/rlhf/reward-config';
import { RewardTrainingError } from '../../src/lib/rlhf/reward-train';
import { SFT_SETTINGS } from '../../src/lib/rlhf/sft-config';
import { DEFAULT_SFT_CONFIG, resolveSftConfig } from '../../src/lib/rlhf/sft';
import { TuneInputError } from '../../src/lib/rlhf/errors';
import { SettingsError, decimal, settingsTable } from '../../src/lib/settings/table';

interface Toy {
  mode: 'a' | 'b';
  n: number;
  x: number | null;
  on: boolean;
}
const toy = settingsTable<Toy>(
  {
    mode: { kind: 'choice', choices: ['a', 'b'], default: 'a', help: 'mode', live: false },
    n: { kind: 'number', int: true, min: 1, max: 10, default: (c) => (c.mode === 'b' ? 7 : 3), help: 'n', live: true },
    x: {
      kind: 'number-or-off',
      min: 0,
      minExclusive: true,
      max: 1,
      onValue: 0.5,
      default: null,
      help: 'x',
      live: true,
    },
    on: { kind: 'boolean', default: true, help: 'on', label: 'switch', live: true },
  },
  {
    what: 'toy',
    urlPrefix: 't',
    cross: (c, alone) => (!alone.n && c.on && c.n > 5 ? { n: 'must be ≤ 5 when on' } : {}),
  },
);

describe('settings table', () => {
  it('defaults follow the fields they depend on; validate fills and checks every field at once', () => {
    expect(toy.defaults).toEqual({ mode: 'a', n: 3, x: null, on: true });
    expect(toy.defaultsFor({ mode: 'b' }).n).toBe(7);
    expect(toy.validate({ mode: 'b', on: false })).toEqual({ mode: 'b', n: 7, x: null, on: false });
    const err = (() => {
      try {
        toy.validate({ mode: 'c', n: 2.5, x: 0, on: 'yes', extra: 1 });
      } catch (e) {
        return e as SettingsError<Toy>;
      }
    })();
    expect(err).toBeInstanceOf(SettingsError);
    expect(Object.keys(err!.fields).sort()).toEqual(['_', 'mode', 'n', 'on', 'x']);
    expect(err!.fields.n).toBe('must be a whole number ≥ 1 and ≤ 10, got 2.5');
    expect(err!.fields.x).toBe('must be off (null) or a number > 0 and ≤ 1, got 0');
    expect(err!.message).toMatch(/^Invalid toy settings: unknown setting extra; mode: must be 'a' or 'b'/);
    // Cross-field checks run on fields that are fine alone.
    expect(toy.problems({ mode: 'b' })).toEqual({ n: 'must be ≤ 5 when on' });
    expect(toy.problems({ n: 11 }).n).toMatch(/≤ 10/);
  });

  it('update: live fields change, fixed ones are refused, nothing changes on a bad value', () => {
    const c = toy.validate({ on: false, n: 8 });
    expect(toy.update(c, { n: 9, x: 0.25 })).toEqual({ mode: 'a', n: 9, x: 0.25, on: false });
    expect(() => toy.update(c, { mode: 'b' })).toThrow(/mode: cannot change while the run goes on/);
    expect(toy.update(c, { mode: 'a' }).mode).toBe('a'); // the same value is no change
    expect(() => toy.update(c, { on: true })).toThrow(/n: must be ≤ 5 when on/);
    expect(c).toEqual({ mode: 'a', n: 8, x: null, on: false });
  });

  it('URL text: plain decimal numbers, booleans, off, choices; names with the prefix', () => {
    expect(decimal('1e-4')).toBe(1e-4);
    expect(decimal(' .5 ')).toBe(0.5);
    expect(decimal('-3')).toBe(-3);
    for (const bad of ['0x10', '0b11', '0o7', 'Infinity', '1_000', '', '1e', '--1', '١'])
      expect(decimal(bad)).toBeNaN();
    expect(toy.parse('n', '4')).toEqual({ ok: true, value: 4 });
    expect(toy.parse('n', '0x4')).toEqual({
      ok: false,
      reason: 'must be a whole number ≥ 1 and ≤ 10 in plain decimal notation',
    });
    expect(toy.parse('x', 'off')).toEqual({ ok: true, value: null });
    expect(toy.parse('on', 'no')).toEqual({ ok: true, value: false });
    expect(toy.parse('mode', 'B')).toEqual({ ok: true, value: 'b' });
    expect(toy.urlName('n')).toBe('tN');
    expect(toy.format('x', null)).toBe('off');
  });

  it('every trainer table: help on every row, defaults valid and JSON, fixed seeds', () => {
    for (const t of [PPO_SETTINGS, REWARD_SETTINGS, SFT_SETTINGS, DPO_SETTINGS] as const) {
      const table = t as unknown as typeof SFT_SETTINGS;
      for (const k of table.keys) expect(table.help(k).length).toBeGreaterThanOrEqual(10);
      expect(table.validate({})).toEqual(table.defaults);
      expect(JSON.parse(JSON.stringify(table.defaults))).toEqual(table.defaults);
    }
    expect(PPO_SETTINGS.isLive('klCoef')).toBe(true);
    expect(PPO_SETTINGS.isLive('seed')).toBe(false);
  });

  it('one default per setting: the trainers and the pages read the same values', () => {
    // Reward model: full mode's measured best (lr 1e-4, weight decay 0.1) is the trainer's default too.
    expect(rewardDefaults('full')).toMatchObject({
      mode: 'full',
      learningRate: 1e-4,
      weightDecay: 0.1,
      epochs: 6,
      earlyStopping: true,
    });
    expect(rewardDefaults('head')).toMatchObject({
      mode: 'head',
      learningRate: 1e-2,
      epochs: 60,
      headL2: 10,
      earlyStopping: false,
    });
    // SFT and DPO: the library's defaults are the forms' (10 epochs at 3e-4; DPO 2 epochs at 1e-4).
    expect(DEFAULT_SFT_CONFIG).toBe(SFT_SETTINGS.defaults);
    expect(resolveSftConfig({})).toMatchObject({ epochs: 10, learningRate: 3e-4 });
    expect(DEFAULT_DPO_CONFIG).toBe(DPO_SETTINGS.defaults);
    expect(resolveDpoConfig({})).toMatchObject({ epochs: 2, learningRate: 1e-4, beta: 0.1 });
  });

  it('each trainer throws its own error class, naming the fields in words', () => {
    expect(() => resolveSftConfig({ epochs: 0, learningRate: 2 })).toThrow(TuneInputError);
    expect(() => resolveSftConfig({ epochs: 0, learningRate: 2 })).toThrow(
      /^SFT: epochs must be a whole number ≥ 1 and ≤ 1000, got 0; learning rate must be a number > 0 and < 1, got 2\.$/,
    );
    expect(() => resolveDpoConfig({ lossType: 'hinge' as 'ipo' })).toThrow(
      /^DPO: loss type must be 'sigmoid' or 'ipo'/,
    );
    expect(() => REWARD_SETTINGS.validate({ batchSize: 0 })).toThrow(RewardTrainingError);
    expect(() => PPO_SETTINGS.validate({ lr: 0 })).toThrow(PpoConfigError);
  });
});
