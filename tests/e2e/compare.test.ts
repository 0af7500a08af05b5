/**
 * Runs page, across algorithms (issue 16.6): a short DPO run (on scripted sentiment labels) and a
 * short PPO run are saved; picked together on the Runs page they meet on shared charts: PPO's
 * reward and KL curves (DPO listed as having none, and why), and both runs on the diversity of
 * their evaluation samples, each line labelled with its algorithm and run name.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { labelWithSentimentBot, openApp } from './harness';

const MODEL_TIMEOUT = 120_000;
const RUN_TIMEOUT = 300_000;

async function setNumber(page: Page, testId: string, value: number): Promise<void> {
  const input = page.locator(`[data-testid="${testId}"]`);
  await input.fill(String(value));
  await input.dispatchEvent('change');
}

const chart = (metric: string) => `[data-testid="shared-metric"][data-metric="${metric}"]`;

describe('runs page: algorithms side by side', () => {
  it('a DPO and a PPO run meet on shared charts: reward and KL for PPO, diversity for both', async () => {
    const app = await openApp('/#/train');
    const { page } = app;
    try {
      await labelWithSentimentBot(page, 20);

      // DPO, short: saved as a run when it finishes.
      await page.click('nav a[href="#/train"]');
      await page.click('[data-testid="method-dpo"]');
      await page.click('[data-testid="dpo-reload"]');
      await page.waitForFunction(
        () => parseInt(document.querySelector('[data-testid="dpo-pair-count"] strong')?.textContent ?? '0', 10) >= 8,
      );
      await setNumber(page, 'dpo-epochs', 1);
      await setNumber(page, 'dpo-batch', 4);
      await page.waitForSelector('[data-testid="dpo-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="dpo-start"]');
      await page.waitForSelector('[data-testid="tune-run-saved"][data-saved="true"]', { timeout: RUN_TIMEOUT });
      await page.click('[data-testid="tune-discard"]');

      // PPO, two iterations with a checkpoint (that saves the run), then paused.
      await page.click('[data-testid="method-ppo"]');
      await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await setNumber(page, 'cfg-batchSize', 4);
      await setNumber(page, 'cfg-maxNewTokens', 8);
      await setNumber(page, 'cfg-ppoEpochs', 1);
      await setNumber(page, 'eval-every', 1);
      await setNumber(page, 'checkpoint-every', 1);
      await page.click('[data-testid="ppo-start"]');
      await page.waitForSelector('[data-testid="ppo-saved"]:has-text("saved at")', { timeout: RUN_TIMEOUT });
      await page.click('[data-testid="ppo-pause"]');
      await page.waitForSelector('[data-testid="ppo-resume"]', { timeout: RUN_TIMEOUT });

      await page.click('nav a[href="#/runs"]');
      await page.waitForSelector('[data-testid="stage-runs"]');
      await page.click('[data-testid="runs-reload"]');
      await page.locator('[data-testid="run-row"][data-kind="dpo"] [data-testid="run-select"]').check();
      await page.locator('[data-testid="run-row"][data-kind="ppo"] [data-testid="run-select"]').first().check();
      await page.waitForSelector('[data-testid="runs-shared"]');

      // Reward: PPO's objective/scores; DPO is listed as not having one, and why.
      const reward = page.locator(chart('reward'));
      assert.equal(await reward.count(), 1, 'one reward chart: the runs do not train on different rewards');
      assert.equal(await reward.locator('[data-testid="shared-series"]').count(), 1);
      const rewardText = (await reward.textContent())!;
      assert.match(rewardText, /PPO · .*\(objective\/scores\)/);
      assert.match(
        (await reward.locator('[data-testid="shared-absent"]').textContent())!,
        /DPO · .*offline DPO learns from pairs/,
      );
      assert.equal(await page.locator('[data-testid="runs-rewards-differ"]').count(), 0);
      const ppoPoints = Number(await reward.locator('[data-testid="shared-series"]').getAttribute('data-points'));
      assert.ok(ppoPoints >= 1, `PPO's reward has points: ${ppoPoints}`);
      assert.equal(await page.locator(`${chart('kl')} [data-testid="shared-series"]`).count(), 1);
      assert.match((await page.locator(`${chart('kl')} figcaption`).textContent())!, /nats per completion/);

      // Diversity: both runs on one chart, labelled with their algorithm.
      const d2 = page.locator(chart('distinct-2'));
      assert.equal(await d2.locator('[data-testid="shared-series"]').count(), 2);
      const legend = (await d2.locator('.legend').textContent())!;
      assert.match(legend, /PPO · /);
      assert.match(legend, /DPO · /);
      const pts = await d2
        .locator('[data-testid="shared-series"]')
        .evaluateAll((gs) => gs.map((g) => Number(g.getAttribute('data-points'))));
      assert.ok(
        pts.every((n) => n >= 1),
        `both runs have evaluation points: ${pts}`,
      );
    } finally {
      await app.close();
    }
  });
});
