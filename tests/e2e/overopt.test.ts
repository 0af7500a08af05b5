import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { openApp } from './harness';

const MODEL_TIMEOUT = 120_000;
const RUN_TIMEOUT = 400_000;
const ITER_TIMEOUT = 180_000;

async function setNumber(page: Page, testId: string, value: number): Promise<void> {
  const input = page.locator(`[data-testid="${testId}"]`);
  await input.fill(String(value));
  await input.dispatchEvent('change');
}

/** The chart's points per series, and its text summary. */
async function chartState(page: Page, scope: string) {
  const chart = page.locator(`${scope} [data-testid="overopt-chart"]`);
  return {
    gold: await chart.locator('[data-testid="overopt-point"][data-series="gold"]').count(),
    proxy: await chart.locator('[data-testid="overopt-point"][data-series="proxy"]').count(),
    peak: await chart.locator('[data-testid="overopt-peak"]').count(),
    summary: (await chart.locator('[data-testid="overopt-summary"]').textContent())!.trim(),
    label: await chart.locator('svg').getAttribute('aria-labelledby'),
  };
}

describe('over-optimisation (Gao et al. 2022)', () => {
  it('the preset runs (quick) and its results show gold and proxy against √KL, with a summary', async () => {
    const app = await openApp('/?quick=1#/start');
    const { page } = app;
    try {
      const card = '[data-testid="scenario-card"][data-id="over-optimisation"]';
      await page.click(`${card} h3 button`);
      assert.match((await page.textContent(card))!, /over-optimisation/i);
      await page.waitForSelector(`${card} [data-testid="scenario-run"]:enabled`, { timeout: MODEL_TIMEOUT });
      await page.click(`${card} [data-testid="scenario-run"]`);
      await page.waitForSelector('[data-testid="scenario-done"]', { timeout: RUN_TIMEOUT });

      // Iteration 0 (the starting model) and iteration 1: two points per series, joined.
      await page.waitForSelector('[data-testid="scenario-results"] [data-testid="overopt-chart"]');
      const s = await chartState(page, '[data-testid="scenario-results"]');
      assert.equal(s.gold, 2, `gold points: ${s.gold}`);
      assert.equal(s.proxy, 2, `proxy points: ${s.proxy}`);
      assert.equal(s.peak, 1, 'the gold peak is marked');
      assert.ok(s.label, 'the chart is named');
      // A sentence about gold, proxy and √KL with numbers, not a placeholder.
      assert.match(s.summary, /gold/i);
      assert.match(s.summary, /proxy/);
      assert.match(s.summary, /√KL \d+\.\d\d/);
      // Quick mode keeps 2 samples per prompt; the sample table shows one per prompt.
      const rows = await page.locator('[data-testid="result-sample"]').count();
      assert.ok(rows >= 1 && rows <= 4, `${rows} sample rows`);
      // The first column is the starting model (iteration 0).
      assert.match((await page.textContent('#res-title'))!, /iteration 0 and 1/);
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });

  it('the Train page shows the chart when a gold labeller is set and an evaluation happened; bad samples-per-prompt is refused', async () => {
    const app = await openApp('/#/train');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.selectOption('[data-testid="reward-labeller"]', 'length');
      await page.selectOption('[data-testid="gold-labeller"]', 'sentiment');
      await setNumber(page, 'cfg-batchSize', 4);
      await setNumber(page, 'cfg-maxNewTokens', 8);
      await setNumber(page, 'cfg-ppoEpochs', 1);
      await setNumber(page, 'eval-every', 1);
      assert.equal(await page.locator('[data-testid="overopt-chart"]').count(), 0, 'no chart before any evaluation');

      // 0 samples per prompt: a clear error, and no run is created.
      await setNumber(page, 'eval-samples', 0);
      await page.click('[data-testid="ppo-start"]');
      await page.waitForSelector('[data-testid="ppo-error"]');
      assert.match((await page.textContent('[data-testid="ppo-error"]'))!, /Samples per evaluation prompt/);
      await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])');

      await setNumber(page, 'eval-samples', 2);
      await page.click('[data-testid="ppo-start"]');
      // Evaluated at iteration 0 (start) and after iteration 1.
      await page.waitForFunction(
        () => document.querySelectorAll('[data-testid="overopt-point"][data-series="gold"]').length >= 2,
        undefined,
        { timeout: ITER_TIMEOUT },
      );
      await page.click('[data-testid="ppo-pause"]');
      await page.waitForSelector('[data-testid="ppo-resume"]', { timeout: ITER_TIMEOUT });
      const s = await chartState(page, '[data-testid="stage-train"]');
      assert.ok(s.gold >= 2 && s.gold === s.proxy, `points: gold ${s.gold}, proxy ${s.proxy}`);
      assert.match(s.summary, /√KL \d+\.\d\d/);
      // The evaluation samples: 2 per prompt (4 prompts), scrubber at the latest evaluation.
      assert.equal(await page.locator('[data-testid="eval-scrubber"] li').count(), 8);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
});
