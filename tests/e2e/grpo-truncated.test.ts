/**
 * GRPO with "mask truncated completions" on and a completion length of one token: no completion
 * of the bundled model ends, so every row is masked out of the loss. The run goes on (no false
 * "diverged" error), the panel says the updates were skipped, and the "every completion
 * truncated" alarm fires (src/lib/rlhf/grpo.ts `update`, group-alarms.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openApp } from './harness';

const MODEL_TIMEOUT = 120_000;
const ITER_TIMEOUT = 180_000;

describe('train page: GRPO where every completion is truncated and masked', () => {
  it('skips the updates, says so, keeps counting iterations and raises the truncation alarm', async () => {
    const app = await openApp(
      '/?grpoBatchSize=8&grpoNumGenerations=4&grpoMaxCompletionLength=1&grpoMaskTruncatedCompletions=true#/train',
    );
    const { page } = app;
    try {
      await page.click('[data-testid="method-grpo"]');
      await page.waitForSelector('[data-testid="group-panel"][data-algo="grpo"]');
      await page.selectOption('[data-testid="group-reward-kind"]', 'labeller');
      await page.selectOption('[data-testid="group-labeller"]', 'sentiment');
      await page.waitForSelector('[data-testid="group-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="group-start"]');
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="group-iteration"]')?.textContent ?? '0') >= 4,
        undefined,
        { timeout: ITER_TIMEOUT },
      );
      const note = (await page.textContent('[data-testid="group-skipped"]'))!;
      const skipped = Number(/^\s*(\d+) update/.exec(note)?.[1]);
      assert.ok(skipped >= 3, note); // a one-token completion of this model almost never ends
      assert.match(note, /length limit/);
      assert.equal(await page.locator('[data-testid="group-error"]').count(), 0);
      await page.waitForSelector('[data-testid="group-alarm"][data-alarm-id="all-truncated"]', {
        timeout: ITER_TIMEOUT,
      });
      await page.waitForSelector('[data-metric="completions/clipped_ratio"] [data-testid="chart-value"]:not(:empty)');
      await page.click('[data-testid="group-pause"]');
      await page.waitForSelector('[data-testid="group-resume"]', { timeout: ITER_TIMEOUT });
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
});
