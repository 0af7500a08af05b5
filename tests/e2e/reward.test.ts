import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { labelWithSentimentBot, openApp } from './harness';

const MODEL_TIMEOUT = 120_000;

describe('reward model page', () => {
  it('scripted labels → train → held-out accuracy shown; reload keeps the active model; too few pairs is refused', async () => {
    const app = await openApp('/#/reward');
    const { page } = app;
    try {
      // With no labels the page says what to do and cannot train.
      await page.waitForSelector('[data-testid="stage-reward"]');
      await page.waitForSelector('text=At least 8 pairs');
      assert.equal(await page.isDisabled('[data-testid="train-rm"]'), true);

      // 40 pairs from a scripted sentiment labeller.
      await labelWithSentimentBot(page, 40);

      await page.click('nav a[href="#/reward"]');
      await page.click('text=Reload data');
      await page.waitForFunction(() => {
        const n = parseInt(document.querySelector('[data-testid="pair-count"] strong')?.textContent ?? '0', 10);
        return n >= 8;
      });
      await page.click('[data-testid="train-rm"]');
      await page.waitForSelector('[data-metric="loss"] [data-testid="chart-value"]:not(:empty)', {
        timeout: MODEL_TIMEOUT,
      });
      await page.waitForSelector('[data-testid="rm-item"]', { timeout: 300_000 });
      const acc = (await page.textContent('[data-testid="rm-accuracy"]'))!;
      assert.match(acc.replace(/\s+/g, ' '), /held-out \d+\.\d% on \d+ pairs/);

      // The inspector scores text with the active model.
      await page.click('[data-testid="score-text"]');
      const score = Number(await page.textContent('[data-testid="inspect-score"]', { timeout: 30_000 }));
      assert.ok(Number.isFinite(score));

      // Active learning: the studio can show first the pairs the reward model is least sure about.
      await page.click('nav a[href="#/feedback"]');
      await page.click('[data-testid="add-human"]');
      await page.fill('[data-testid="annotator-name"]', 'alice');
      await page.click('[data-testid="create-annotator"]');
      await page.check('[data-testid="by-uncertainty"]');
      const u = await page.getAttribute('[data-testid="pair"][data-uncertainty]', 'data-uncertainty', {
        timeout: MODEL_TIMEOUT,
      });
      assert.ok(Number(u) >= 0 && Number.isFinite(Number(u)), `uncertainty ${u}`);
      await page.click('nav a[href="#/reward"]');

      // After a reload the saved model is still listed and active.
      await page.reload();
      await page.waitForSelector('[data-testid="rm-item"] input:checked', { timeout: MODEL_TIMEOUT });
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });
});
