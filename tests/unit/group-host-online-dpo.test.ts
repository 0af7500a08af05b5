/**
 * Online DPO through the engine (src/lib/engine/group-host.ts), in-thread with the shipped model on wasm:
 * a run with a scripted labeller as the reward sends TRL-named metrics and its judged pairs per
 * iteration; a live setting reaches the trainer's next iteration; its state resumes a new run
 * exactly; a bad setting and an unknown algorithm are refused with a message and change nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { useBackend } from './tf-backends';
import { engineWithBundledModel } from './bundled-engine';
import type { Engine, GroupEvent } from '../../src/lib/engine/types';
import type { OnlineDpoMetrics } from '../../src/lib/rlhf/online-dpo';
import { defaultLabellerConfig } from '../../src/lib/rlhf/labellers';

let engine: Engine;

beforeAll(async () => {
  await useBackend('wasm');
  engine = await engineWithBundledModel('wasm');
}, 120_000);

afterAll(async () => {
  await engine.groupDispose();
  await useBackend('cpu');
});

describe('online DPO in the engine', () => {
  test('runs with a scripted labeller: metrics and pairs per iteration, live β, refusals', async () => {
    const status = await engine.groupCreate({
      algo: 'online-dpo',
      config: { batchSize: 2, maxNewTokens: 6, seed: 4 },
      prompts: ['The movie was', 'The food was', 'The book was'],
      reward: { kind: 'labeller', labeller: defaultLabellerConfig('sentiment') },
    });
    expect(status).toMatchObject({ algo: 'online-dpo', iteration: 0, config: { batchSize: 2, beta: 0.1 } });
    const events: GroupEvent[] = [];
    await engine.groupRun('odpo-1', { iterations: 1 }, (e) => events.push(e));
    expect(events).toHaveLength(1);
    const m = events[0].metrics as OnlineDpoMetrics;
    expect(m['objective/kl']).toBeCloseTo(0, 3);
    expect(m.beta).toBe(0.1);
    expect(events[0].pairs).toHaveLength(2);
    for (const p of events[0].pairs!) {
      expect(p.chosenScore).toBeGreaterThanOrEqual(p.rejectedScore);
      expect(p.margin).toBeCloseTo(p.chosenScore - p.rejectedScore, 10);
    }
    expect((await engine.groupUpdateConfig({ beta: 0.4 })).beta).toBe(0.4);
    await expect(engine.groupUpdateConfig({ lossType: 'hinge' as never })).rejects.toThrow(/lossType/);
    await engine.groupRun('odpo-2', { iterations: 1 }, (e) => events.push(e));
    expect((events[1].metrics as OnlineDpoMetrics).beta).toBe(0.4);
    expect((await engine.groupStatus())?.iteration).toBe(2);
    // Saved and resumed as GRPO runs are: the state names its trainer, and a run rebuilt from it
    // runs the iteration the original runs next.
    const state = await engine.groupState();
    expect(state).toMatchObject({ algo: 'online-dpo', iteration: 2, config: { beta: 0.4 } });
    const setup = (await engine.groupStatus())!.setup;
    await engine.groupRun('odpo-3', { iterations: 1 }, (e) => events.push(e));
    expect(await engine.groupCreate(setup, state)).toMatchObject({ algo: 'online-dpo', iteration: 2 });
    await engine.groupRun('odpo-4', { iterations: 1 }, (e) => events.push(e));
    expect(events[3].pairs).toEqual(events[2].pairs);
    expect((events[3].metrics as OnlineDpoMetrics).loss).toBeCloseTo((events[2].metrics as OnlineDpoMetrics).loss, 5);
    await expect(engine.groupCreate({ ...setup, algo: 'grpo' }, state)).rejects.toThrow(
      /saved online DPO state cannot resume a GRPO run/i,
    );
    await expect(
      engine.groupCreate({
        algo: 'ppo' as never,
        config: {},
        prompts: ['x'],
        reward: { kind: 'labeller', labeller: defaultLabellerConfig('sentiment') },
      }),
    ).rejects.toThrow(/'grpo', 'rloo' or 'online-dpo'/);
    expect((await engine.groupStatus())?.algo).toBe('online-dpo');
  }, 400_000);
});
