/**
 * Run-health alarms in the browser (issue 20): a PPO run made to blow up (a fixed β of 0 and a
 * checkpoint every iteration; after two healthy iterations the learning rate goes to 100× the
 * default) raises the KL alarm, marks it on the charts, and rewind goes back to the checkpoint
 * saved before it fired with the suggested change in the engine's run and in the settings table;
 * while an alarm (or a condition not yet confirmed) is open checkpoints are held; dismiss hides an
 * alarm. (With lr 0.005 from the start the policy blows up before any checkpoint is saved, so
 * rewind would go to the start.) An alarm fires once its condition held after two iterations
 * running, so the checkpoint saved at the first blown-up iteration is held back as well.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { openApp } from './harness';

const MODEL_TIMEOUT = 120_000;
const ALARM_TIMEOUT = 300_000;

const URL = '/?adaptiveKl=off&klCoef=0&batchSize=4&maxNewTokens=8&ppoEpochs=2&checkpointEvery=1#/train';

/** Start the run, let it save two healthy checkpoints, then raise lr 100× (live). */
async function blowUp(page: Page): Promise<void> {
  await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
  await page.click('[data-testid="ppo-start"]');
  await page.waitForFunction(
    () => /saved at [2-9]/.test(document.querySelector('[data-testid="ppo-saved"]')?.textContent ?? ''),
    undefined,
    { timeout: ALARM_TIMEOUT },
  );
  assert.equal(await page.locator('[data-testid="alarm"]').count(), 0, 'no alarm on the healthy iterations');
  const lr = page.locator('[data-testid="cfg-lr"]');
  await lr.fill('0.005');
  await lr.dispatchEvent('change');
}

type EngineHandle = { rlhf: { engine: { engine: import('../../src/lib/engine/types').Engine } } };

async function ppoStatus(page: Page) {
  return page.evaluate(async () => {
    const s = await (globalThis as unknown as EngineHandle).rlhf.engine.engine.ppoStatus();
    return s && { iteration: s.iteration, config: s.config };
  });
}

describe('run-health alarms', () => {
  it('a run blowing up raises the KL alarm, marked on the charts; rewind restores the checkpoint and applies the change', async () => {
    const app = await openApp(URL);
    const { page } = app;
    try {
      await blowUp(page);
      const alarm = page.locator('[data-testid="alarm"][data-alarm-id="kl-runaway"]');
      await alarm.waitFor({ timeout: ALARM_TIMEOUT });
      const text = (await alarm.locator('[data-testid="alarm-message"]').textContent())!;
      assert.match(text, /KL to the reference is [\d.]+ nats with a fixed β of 0/);
      assert.match((await alarm.locator('[data-testid="alarm-suggestion"]').textContent())!, /raise klCoef to 0\.1/);
      const firedAt = Number(/iteration (\d+)/.exec((await alarm.locator('.msg strong').textContent())!)![1]);
      // The moment is marked on the charts.
      await page.waitForSelector(`[data-metric="objective/kl"] line.marker[data-x="${firedAt}"]`, {
        state: 'attached',
      });

      // Checkpoints were saved every iteration until an alarm fired, then held.
      const button = alarm.locator('[data-testid="alarm-rewind"]');
      const label = (await button.textContent())!;
      const checkpoint = Number(/iteration (\d+)/.exec(label)![1]);
      assert.ok(checkpoint >= 2 && checkpoint < firedAt, label);
      // Confirmed at the second iteration running, and the checkpoint was held from the first one.
      assert.ok(checkpoint <= firedAt - 2, `${label}, fired at ${firedAt}`);
      await button.click();
      await page.waitForFunction(
        (n) =>
          document.querySelector('[data-testid="ppo-iteration"]')?.textContent === String(n) &&
          document.querySelector('[data-testid="ppo-resume"]') !== null,
        checkpoint,
        { timeout: ALARM_TIMEOUT },
      );
      const status = (await ppoStatus(page))!;
      assert.equal(status.iteration, checkpoint);
      assert.equal(status.config.klCoef, 0.1);
      assert.deepEqual(status.config.adaptiveKl, { target: 4, horizon: 64 });
      assert.equal(status.config.lr, 0.0025);
      assert.equal(Number(await page.inputValue('[data-testid="cfg-klCoef"]')), 0.1);
      // The rewound iterations' alarm and its marker are gone.
      assert.equal(await alarm.count(), 0);
      assert.equal(await page.locator(`[data-metric="objective/kl"] line.marker[data-x="${firedAt}"]`).count(), 0);

      // Going on from there trains with the new settings (β is the beta metric of the next iteration).
      await page.click('[data-testid="ppo-step"]');
      await page.waitForFunction(
        (n) => document.querySelector('[data-testid="ppo-iteration"]')?.textContent === String(n + 1),
        checkpoint,
        { timeout: ALARM_TIMEOUT },
      );
      assert.equal((await ppoStatus(page))!.config.klCoef, 0.1);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('while an alarm is open checkpoints are held; dismiss hides it and keeps its marker', async () => {
    const app = await openApp(URL);
    const { page } = app;
    try {
      await blowUp(page);
      const alarm = page.locator('[data-testid="alarm"][data-alarm-id="kl-runaway"]');
      await alarm.waitFor({ timeout: ALARM_TIMEOUT });
      await page.click('[data-testid="ppo-pause"]');
      await page.waitForSelector('[data-testid="ppo-resume"]', { timeout: ALARM_TIMEOUT });
      const iteration = Number(await page.textContent('[data-testid="ppo-iteration"]'));
      const saved = Number(/saved at (\d+)/.exec((await page.textContent('[data-testid="ppo-saved"]'))!)![1]);
      assert.ok(saved < iteration, `held: saved at ${saved}, iteration ${iteration}`);
      const markers = await page.locator('[data-metric="objective/kl"] line.marker').count();
      assert.ok(markers >= 1);
      await alarm.locator('[data-testid="alarm-dismiss"]').click();
      assert.equal(await alarm.count(), 0);
      assert.equal(await page.locator('[data-metric="objective/kl"] line.marker').count(), markers);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
});

describe('run-health alarms on GRPO', () => {
  it('every completion truncated raises the alarm on the GRPO panel, marked on the curves; apply changes the run live', async () => {
    // One-token completions: every one is cut off without an end-of-text (clipped_ratio 1).
    const app = await openApp('/?grpoBatchSize=8&grpoNumGenerations=4&grpoMaxCompletionLength=1#/train');
    const { page } = app;
    try {
      await page.click('[data-testid="method-grpo"]');
      await page.waitForSelector('[data-testid="group-panel"][data-algo="grpo"]');
      await page.selectOption('[data-testid="group-reward-kind"]', 'labeller');
      await page.waitForSelector('[data-testid="group-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="group-start"]');
      const alarm = page.locator('[data-testid="group-alarm"][data-alarm-id="all-truncated"]');
      await alarm.waitFor({ timeout: ALARM_TIMEOUT });
      // Three iterations make the condition, the fourth confirms it (iterations count from 0).
      const firedAt = Number(/iteration (\d+)/.exec((await alarm.locator('.msg strong').textContent())!)![1]);
      assert.equal(firedAt, 3);
      assert.match(
        (await alarm.locator('[data-testid="group-alarm-message"]').textContent())!,
        /^100 % of the completions hit the length limit without an end-of-text/,
      );
      assert.match((await page.textContent('[data-testid="group-alarms"]'))!, /no rewind here/);
      await page.waitForSelector(`[data-metric="completions/clipped_ratio"] line.marker[data-x="${firedAt}"]`, {
        state: 'attached',
      });
      await alarm.locator('[data-testid="group-alarm-apply"]').click();
      await page.waitForFunction(
        async () => {
          const e = (
            globalThis as unknown as { rlhf: { engine: { engine: import('../../src/lib/engine/types').Engine } } }
          ).rlhf.engine.engine;
          const config = (await e.groupStatus())?.config;
          return !!config && 'maskTruncatedCompletions' in config && config.maskTruncatedCompletions === true;
        },
        undefined,
        { timeout: ALARM_TIMEOUT },
      );
      assert.equal(await alarm.count(), 0);
      assert.equal(await page.isChecked('[data-testid="grpo-maskTruncatedCompletions"]'), true);
      // The marker stays; the run counts the alarm.
      assert.equal(await page.getAttribute('[data-testid="group-alarms"]', 'data-fired'), '1');
      // One-token iterations re-render the panel many times a second: click without waiting for it to settle.
      await page.locator('[data-testid="group-pause"]').dispatchEvent('click');
      await page.waitForSelector('[data-testid="group-resume"]', { timeout: ALARM_TIMEOUT });
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
});
