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

async function attr(page: Page, selector: string, name: string): Promise<number> {
  return Number(await page.getAttribute(selector, name));
}

describe('train page: DPO and SFT', () => {
  it('DPO without pairs says so; SFT on a typed demonstration lowers the loss; DPO on scripted labels raises rewards/margins', async () => {
    const app = await openApp('/#/train');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="stage-train"]');
      // The switch shows PPO first; DPO replaces its panels.
      await page.waitForSelector('[data-testid="ppo-start"]');
      await page.click('[data-testid="method-dpo"]');
      await page.waitForSelector('[data-testid="dpo-panel"]');
      assert.equal(await page.isVisible('[data-testid="ppo-start"]'), false);

      // No pairs in a fresh profile: a clear message, and nothing runs.
      await page.waitForSelector('text=No preference pairs yet');
      await page.waitForSelector('[data-testid="dpo-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="dpo-start"]');
      const err = (await page.textContent('[data-testid="dpo-error"]', { timeout: 30_000 }))!;
      assert.match(err, /DPO needs preference pairs/);
      assert.equal(await page.locator('[data-testid="tuned-model"]').count(), 0);

      // SFT: an empty completion is refused before saving; a typed demonstration is saved and trains.
      await page.click('[data-testid="method-sft"]');
      await page.waitForSelector('[data-testid="sft-panel"]');
      await page.fill('[data-testid="demo-prompt"]', 'The movie was');
      await page.fill('[data-testid="demo-completion"]', '   ');
      await page.click('[data-testid="demo-add"]');
      assert.match((await page.textContent('[data-testid="demo-error"]'))!, /Write a completion/);
      assert.equal(await page.locator('[data-testid="demo-item"]').count(), 0);
      await page.fill('[data-testid="demo-completion"]', ' a quiet triumph, and I loved every minute of it.');
      await page.click('[data-testid="demo-add"]');
      await page.waitForSelector('[data-testid="demo-item"]');
      await setNumber(page, 'sft-epochs', 8);
      await setNumber(page, 'sft-lr', 0.001);
      await page.click('[data-testid="sft-start"]');
      await page.waitForSelector('[data-testid="tuned-model"]', { timeout: RUN_TIMEOUT });
      await page.waitForSelector('[data-metric="loss"] [data-testid="chart-value"]:not(:empty)');
      const sel = '[data-testid="sft-loss"]';
      assert.equal(await attr(page, sel, 'data-steps'), 8);
      const first = await attr(page, sel, 'data-first');
      const last = await attr(page, sel, 'data-last');
      assert.ok(last < first * 0.8, `SFT loss falls: ${first} → ${last}`);
      // The saved demonstration survives a reload of the data.
      await page.click('[data-testid="sft-reload"]');
      assert.equal(await page.locator('[data-testid="demo-item"]').count(), 1);
      await page.click('[data-testid="tune-discard"]');
      await page.waitForSelector('[data-testid="tuned-model"]', { state: 'detached' });

      // 30 pairs from a scripted sentiment labeller (as the reward-model test makes them).
      await labelWithSentimentBot(page, 30);

      // DPO with a short config: rewards/margins shown and rising.
      await page.click('nav a[href="#/train"]');
      await page.click('[data-testid="method-dpo"]');
      await page.click('[data-testid="dpo-reload"]');
      await page.waitForFunction(() => {
        const n = parseInt(document.querySelector('[data-testid="dpo-pair-count"] strong')?.textContent ?? '0', 10);
        return n >= 8;
      });
      await setNumber(page, 'dpo-epochs', 3);
      await setNumber(page, 'dpo-lr', 0.0005);
      await setNumber(page, 'dpo-batch', 4);
      await page.click('[data-testid="dpo-start"]');
      await page.waitForSelector('[data-metric="rewards/margins"] [data-testid="chart-value"]:not(:empty)', {
        timeout: RUN_TIMEOUT,
      });
      await page.waitForSelector('[data-testid="tuned-model"]', { timeout: RUN_TIMEOUT });
      const m = '[data-testid="dpo-margins"]';
      assert.ok((await attr(page, m, 'data-steps')) >= 6);
      const m0 = await attr(page, m, 'data-first');
      const m1 = await attr(page, m, 'data-last');
      assert.ok(Math.abs(m0) < 1e-3, `the first step starts at the reference: margin ${m0}`);
      assert.ok(m1 > m0 + 0.01, `rewards/margins rises: ${m0} → ${m1}`);
      assert.equal(await page.locator('[data-testid="dpo-error"]').count(), 0);

      // The tuned policy becomes the loaded model.
      await page.click('[data-testid="tune-adopt"]');
      await page.waitForSelector('[data-testid="tuned-model"]', { state: 'detached', timeout: 60_000 });
      await page.waitForSelector('text=Now using tiny-gpt + DPO');

      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });
});
