/**
 * A backend failure under a running PPO or GRPO run (the engine's simulated wasm trap during a model
 * load, `debugTrapNextLoad`: the backend is restarted and the running job fails with a
 * `DeviceLostError`, as on a lost WebGPU device): the Train page pauses the run at its last save
 * with one sentence that says so, and Resume rebuilds it from that save and trains on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { openApp } from './harness';
import type { Engine, EngineTestHooks } from '../../src/lib/engine/types';

type WithEngine = { rlhf: { engine: { engine: Engine; testHooks: EngineTestHooks } } };

const MODEL_TIMEOUT = 120_000;
const ITER_TIMEOUT = 180_000;
const GROUP_URL = '/?grpoBatchSize=4&grpoNumGenerations=2&grpoMaxCompletionLength=6&checkpointEvery=1000#/train';
const PPO_URL = '/?batchSize=2&miniBatches=1&maxNewTokens=4&ppoEpochs=1&checkpointEvery=1000#/train';

const iteration = (ids: string) =>
  Number(document.querySelector(`[data-testid="${ids}-iteration"]`)?.textContent ?? '-1');
const atLeast = ([ids, n]: readonly [string, number]) =>
  Number(document.querySelector(`[data-testid="${ids}-iteration"]`)?.textContent ?? '-1') >= n;

interface Case {
  label: string;
  url: string;
  /** Prefix of the panel's test ids. */
  ids: 'ppo' | 'group';
  prepare?: (page: Page) => Promise<void>;
}

const CASES: Case[] = [
  { label: 'PPO', url: PPO_URL, ids: 'ppo' },
  {
    label: 'GRPO',
    url: GROUP_URL,
    ids: 'group',
    prepare: async (page) => {
      await page.click('[data-testid="method-grpo"]');
      await page.waitForSelector('[data-testid="group-panel"][data-algo="grpo"]');
      await page.selectOption('[data-testid="group-reward-kind"]', 'labeller');
    },
  },
];

describe('a backend failure during a run', () => {
  for (const c of CASES)
    it(`pauses the ${c.label} run at its last save with one sentence, and Resume goes on from it`, async () => {
      await lostAndResumed(c);
    });
});

async function lostAndResumed(c: Case): Promise<void> {
  const app = await openApp(c.url);
  const { page } = app;
  try {
    await c.prepare?.(page);
    await page.waitForSelector(`[data-testid="${c.ids}-start"]:not([disabled])`, { timeout: MODEL_TIMEOUT });
    await page.click(`[data-testid="${c.ids}-start"]`);
    await page.waitForFunction(atLeast, [c.ids, 1] as const, { timeout: ITER_TIMEOUT });
    await page.click(`[data-testid="${c.ids}-pause"]`);
    await page.waitForSelector(`[data-testid="${c.ids}-resume"]`, { timeout: ITER_TIMEOUT });
    const saved = await page.evaluate(iteration, c.ids); // saved on pause
    // Resume; once one more iteration is done (not saved), the backend fails under the next.
    await page.click(`[data-testid="${c.ids}-resume"]`);
    await page.waitForFunction(atLeast, [c.ids, saved + 1] as const, { timeout: ITER_TIMEOUT });
    const loadError = await page.evaluate(async () => {
      const e = (globalThis as unknown as WithEngine).rlhf.engine;
      await e.testHooks.debugTrapNextLoad();
      // (No named inner functions here: the page would lack tsx's `__name` helper.)
      const [config, tokenizer, weights] = await Promise.all(
        ['config.json', 'tokenizer.json', 'model.safetensors'].map((f) => fetch(`models/tiny-gpt/${f}`)),
      );
      try {
        await e.engine.loadModel({
          name: 'other',
          source: 'bundled',
          config: await config.text(),
          tokenizer: await tokenizer.text(),
          weights: await weights.arrayBuffer(),
        });
        return 'loaded';
      } catch (err) {
        return (err as Error).message;
      }
    });
    assert.match(loadError, /simulated by debugTrapNextLoad/);
    const shown = (
      await page.waitForSelector(`[data-testid="${c.ids}-error"]`, { timeout: ITER_TIMEOUT })
    ).textContent();
    const text = (await shown)!;
    assert.match(
      text,
      new RegExp(
        `backend failed while building the model \\(.*\\); it was restarted: the ${c.label} run is paused at iteration ${saved}, its last save; Resume continues it from there on the new backend\\.$`,
      ),
    );
    assert.equal(await page.evaluate(iteration, c.ids), saved);
    // Resume: rebuilt from the save, it trains on and the message goes.
    await page.click(`[data-testid="${c.ids}-resume"]`);
    await page.waitForFunction(atLeast, [c.ids, saved + 1] as const, { timeout: ITER_TIMEOUT });
    assert.equal(await page.$(`[data-testid="${c.ids}-error"]`), null);
    await page.click(`[data-testid="${c.ids}-pause"]`);
    await page.waitForSelector(`[data-testid="${c.ids}-resume"]`, { timeout: ITER_TIMEOUT });
  } finally {
    await app.close();
  }
}
