import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { openApp } from './harness';

const MODEL_TIMEOUT = 120_000;
const ITER_TIMEOUT = 180_000;

async function setNumber(page: Page, testId: string, value: number): Promise<void> {
  const input = page.locator(`[data-testid="${testId}"]`);
  await input.fill(String(value));
  await input.dispatchEvent('change');
}

async function iteration(page: Page): Promise<number> {
  return Number(await page.textContent('[data-testid="ppo-iteration"]'));
}

async function waitIteration(page: Page, atLeast: number): Promise<void> {
  await page.waitForFunction(
    (n) => Number(document.querySelector('[data-testid="ppo-iteration"]')?.textContent ?? '0') >= n,
    atLeast,
    { timeout: ITER_TIMEOUT },
  );
}

describe('train page (PPO)', () => {
  it('β changed in the settings table during a run is the β of the next iterations; a bad value is refused and the run goes on', async () => {
    // Adaptive KL off, so β is exactly what the table says; a tiny run.
    const app = await openApp('/?adaptiveKl=off&klCoef=0.1&batchSize=4&maxNewTokens=8&ppoEpochs=1#/train');
    const { page } = app;
    const beta = async () =>
      parseFloat((await page.textContent('[data-metric="beta"] [data-testid="chart-value"]')) ?? 'NaN');
    try {
      await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="ppo-start"]');
      await waitIteration(page, 1);
      await page.waitForSelector('[data-metric="beta"] [data-testid="chart-value"]:not(:empty)');
      assert.equal(await beta(), 0.1);
      // The seed cannot change once the run has started; β can.
      assert.equal(await page.isDisabled('[data-testid="cfg-seed"]'), true);
      await setNumber(page, 'cfg-klCoef', 0.7);
      const changedAt = await iteration(page);
      await page.waitForFunction(
        () =>
          parseFloat(document.querySelector('[data-metric="beta"] [data-testid="chart-value"]')?.textContent ?? '') ===
          0.7,
        undefined,
        { timeout: ITER_TIMEOUT },
      );
      assert.ok((await iteration(page)) > changedAt, 'the new β shows from a later iteration');
      // The engine's run has it too (not only the input box).
      const engineBeta = await page.evaluate(async () => {
        const e = (
          globalThis as unknown as { rlhf: { engine: { engine: import('../../src/lib/engine/types').Engine } } }
        ).rlhf.engine.engine;
        return (await e.ppoStatus())?.config.klCoef;
      });
      assert.equal(engineBeta, 0.7);

      // A bad live value: a message, the input goes back, the run goes on with β 0.7.
      await setNumber(page, 'cfg-klCoef', -1);
      await page.waitForSelector('[data-testid="config-error"]');
      assert.match((await page.textContent('[data-testid="config-error"]'))!, /klCoef/);
      const at = await iteration(page);
      await waitIteration(page, at + 2);
      assert.equal(await beta(), 0.7);
      assert.equal(Number(await page.inputValue('[data-testid="cfg-klCoef"]')), 0.7);
      await page.click('[data-testid="ppo-pause"]');
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('labeller reward: start → curves move → pause → reload → resume at the saved iteration → one phase-by-phase cycle', async () => {
    const app = await openApp('/#/train');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="stage-train"]');
      // No reward model in a fresh profile: the reward is a scripted labeller.
      await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      assert.equal(await page.inputValue('[data-testid="reward-kind"]'), 'labeller');
      await page.selectOption('[data-testid="reward-labeller"]', 'sentiment');

      // A tiny run.
      await setNumber(page, 'cfg-batchSize', 4);
      await setNumber(page, 'cfg-maxNewTokens', 8);
      await setNumber(page, 'cfg-ppoEpochs', 1);
      await setNumber(page, 'eval-every', 2);
      await setNumber(page, 'checkpoint-every', 2);

      await page.click('[data-testid="ppo-start"]');
      // Curves move: chart values appear and the iteration count goes up.
      await page.waitForSelector('[data-metric="objective/scores"] [data-testid="chart-value"]:not(:empty)', {
        timeout: ITER_TIMEOUT,
      });
      await page.waitForSelector('[data-metric="loss/policy_avg"] [data-testid="chart-value"]:not(:empty)');
      await waitIteration(page, 2);
      // Gold score of the evaluation samples (every 2 iterations).
      await page.waitForSelector('[data-metric="eval/gold_score"] [data-testid="chart-value"]:not(:empty)', {
        timeout: ITER_TIMEOUT,
      });
      const kl = (await page.textContent('[data-metric="objective/kl"] [data-testid="chart-value"]'))!.trim();
      assert.ok(Number.isFinite(parseFloat(kl)), `objective/kl shows a number, got "${kl}"`);

      // Pause: the loop stops after the current iteration and saves a checkpoint.
      await page.click('[data-testid="ppo-pause"]');
      await page.waitForSelector('[data-testid="ppo-resume"]', { timeout: ITER_TIMEOUT });
      const paused = await iteration(page);
      assert.ok(paused >= 2);
      await page.waitForFunction(
        (n) => document.querySelector('[data-testid="ppo-saved"]')?.textContent?.trim() === `saved at ${n}`,
        paused,
        { timeout: 30_000 },
      );
      // Paused means paused: no more iterations.
      await page.waitForTimeout(1500);
      assert.equal(await iteration(page), paused);

      // Reload: the run is offered and resumes at the saved iteration, with its curves.
      await page.reload();
      await page.waitForSelector('[data-testid="stage-train"]');
      const resume = page.locator('[data-testid="resume-run"]');
      await resume.waitFor({ timeout: MODEL_TIMEOUT });
      assert.equal((await resume.textContent())!.trim(), `Resume run (iteration ${paused})`);
      await page.waitForSelector('[data-testid="resume-run"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await resume.click();
      await page.waitForSelector('[data-testid="ppo-resume"]', { timeout: 60_000 });
      assert.equal(await iteration(page), paused);
      await page.waitForSelector('[data-metric="objective/scores"] [data-testid="chart-value"]:not(:empty)');
      // The restored config is the tiny one.
      assert.equal(await page.inputValue('[data-testid="cfg-batchSize"]'), '4');

      // One phase-by-phase cycle: rollout → score → advantages → update, in order.
      const order = ['rollout', 'score', 'advantages', 'update'];
      for (let k = 0; k < order.length; k++) {
        await page.waitForSelector('[data-testid="ppo-phase"]:not([disabled])', { timeout: ITER_TIMEOUT });
        await page.click('[data-testid="ppo-phase"]');
        if (k < order.length - 1) {
          await page.waitForSelector(`[data-phase="${order[k]}"][data-done="true"]`, { timeout: ITER_TIMEOUT });
          const done = await page.$$eval('[data-testid="phase-view"] > li', (lis) =>
            lis.map((li) => `${li.getAttribute('data-phase')}:${li.getAttribute('data-done')}`),
          );
          assert.deepEqual(
            done,
            order.map((p, i) => `${p}:${i <= k}`),
          );
          assert.equal(await iteration(page), paused, 'a phase alone does not complete the iteration');
        }
      }
      await waitIteration(page, paused + 1);
      await page.waitForSelector('[data-phase="update"][data-done="true"]');
      assert.ok((await page.locator('[data-phase="update"] table.steps tbody tr').count()) >= 1);
      assert.ok((await page.locator('[data-phase="advantages"] .tok').count()) > 0, 'per-token heatmap shown');

      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });
  it('a NaN in the update pauses training and rolls back to the last checkpoint, with a message', async () => {
    const app = await openApp('/#/train');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.selectOption('[data-testid="reward-labeller"]', 'sentiment');
      await setNumber(page, 'cfg-batchSize', 4);
      await setNumber(page, 'cfg-maxNewTokens', 8);
      await setNumber(page, 'cfg-ppoEpochs', 1);
      await setNumber(page, 'checkpoint-every', 1);
      await page.click('[data-testid="ppo-start"]');
      await waitIteration(page, 1);
      await page.click('[data-testid="ppo-pause"]');
      await page.waitForSelector('[data-testid="ppo-resume"]', { timeout: ITER_TIMEOUT });
      const saved = await iteration(page);
      await page.waitForFunction(
        (k) => document.querySelector('[data-testid="ppo-saved"]')?.textContent?.trim() === `saved at ${k}`,
        saved,
        { timeout: 30_000 },
      );
      const poisoned = await page.evaluate(() =>
        (
          globalThis as unknown as {
            rlhf: { engine: { testHooks: import('../../src/lib/engine/types').EngineTestHooks } };
          }
        ).rlhf.engine.testHooks.debugPoisonPpo(),
      );
      assert.equal(poisoned, true);
      await page.waitForSelector('[data-testid="ppo-step"]:not([disabled])', { timeout: ITER_TIMEOUT });
      await page.click('[data-testid="ppo-step"]');
      const err = page.locator('[data-testid="ppo-error"]');
      await err.waitFor({ timeout: ITER_TIMEOUT });
      const text = (await err.textContent())!;
      assert.match(text, /diverged \(NaN\/Inf\) and was paused/);
      assert.ok(text.includes(`rolled back to the checkpoint of iteration ${saved}.`), text);
      assert.equal(await iteration(page), saved);
      // Training goes on from the checkpoint.
      await page.waitForSelector('[data-testid="ppo-step"]:not([disabled])', { timeout: ITER_TIMEOUT });
      await page.click('[data-testid="ppo-step"]');
      await waitIteration(page, saved + 1);
      const score = (await page.textContent('[data-metric="objective/scores"] [data-testid="chart-value"]'))!.trim();
      assert.ok(Number.isFinite(parseFloat(score)), `objective/scores after the rollback is a number: "${score}"`);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
});
