import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openApp } from './harness';

const MODEL_TIMEOUT = 120_000;
const ITER_TIMEOUT = 180_000;

describe('train page: GRPO and RLOO', () => {
  it('GRPO trains on a scripted reward: TRL curves, the group inspector, β changed live reaches the trainer', async () => {
    // A tiny run from the URL table: 2 prompts × 4 completions of 8 tokens.
    const app = await openApp('/?grpoBatchSize=8&grpoNumGenerations=4&grpoMaxCompletionLength=8#/train');
    const { page } = app;
    try {
      await page.click('[data-testid="method-grpo"]');
      await page.waitForSelector('[data-testid="group-panel"][data-algo="grpo"]');
      assert.equal(await page.inputValue('[data-testid="grpo-numGenerations"]'), '4');
      await page.selectOption('[data-testid="group-reward-kind"]', 'labeller');
      await page.selectOption('[data-testid="group-labeller"]', 'sentiment');
      await page.waitForSelector('[data-testid="group-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="group-start"]');
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="group-iteration"]')?.textContent ?? '0') >= 1,
        undefined,
        { timeout: ITER_TIMEOUT },
      );
      // TRL's metric names, drawn live.
      for (const m of ['reward', 'frac_reward_zero_std', 'completions/mean_length', 'kl'])
        await page.waitForSelector(`[data-metric="${m}"] [data-testid="chart-value"]:not(:empty)`);
      // The inspector: 2 groups of 4 completions; a zero-spread group says so.
      await page.waitForSelector('[data-testid="group-inspector"]');
      assert.equal(await page.locator('[data-testid="group"]').count(), 2);
      assert.equal(await page.locator('[data-testid="group-completion"]').count(), 8);
      const flat = await page.locator('[data-testid="group"][data-zero-std="true"]').count();
      assert.equal(await page.locator('[data-testid="group"] .flag').count(), flat);

      // The seed is fixed once the run has started; β is live and reaches the trainer.
      assert.equal(await page.isDisabled('[data-testid="grpo-seed"]'), true);
      const beta = page.locator('[data-testid="grpo-beta"]');
      await beta.fill('0.2');
      await beta.dispatchEvent('change');
      await page.waitForFunction(
        async () => {
          const e = (
            globalThis as unknown as { rlhf: { engine: { engine: import('../../src/lib/engine/types').Engine } } }
          ).rlhf.engine.engine;
          return (await e.groupStatus())?.config.beta === 0.2;
        },
        undefined,
        { timeout: ITER_TIMEOUT },
      );
      // The logged β of a later iteration is the new one.
      await page.waitForFunction(
        () =>
          parseFloat(document.querySelector('[data-metric="beta"] [data-testid="chart-value"]')?.textContent ?? '') ===
          0.2,
        undefined,
        { timeout: ITER_TIMEOUT },
      );
      // A bad live value is refused with a message; the run goes on.
      await beta.fill('-1');
      await beta.dispatchEvent('change');
      await page.waitForSelector('[data-testid="group-config-error"]');
      assert.match((await page.textContent('[data-testid="group-config-error"]'))!, /beta/);
      await page.click('[data-testid="group-pause"]');
      await page.waitForSelector('[data-testid="group-resume"]', { timeout: ITER_TIMEOUT });
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('RLOO runs from the same page with its own table', async () => {
    const app = await openApp('/?rlooBatchSize=8&rlooNumGenerations=4&rlooMaxCompletionLength=8#/train');
    const { page } = app;
    try {
      await page.click('[data-testid="method-rloo"]');
      await page.waitForSelector('[data-testid="group-panel"][data-algo="rloo"]');
      await page.waitForSelector('[data-testid="rloo-normalizeAdvantages"]');
      await page.selectOption('[data-testid="group-reward-kind"]', 'labeller');
      await page.waitForSelector('[data-testid="group-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="group-start"]');
      await page.waitForSelector('[data-metric="reward"] [data-testid="chart-value"]:not(:empty)', {
        timeout: ITER_TIMEOUT,
      });
      await page.click('[data-testid="group-pause"]');
      await page.waitForSelector('[data-testid="group-resume"]', { timeout: ITER_TIMEOUT });
      const status = await page.evaluate(
        async () =>
          (
            await (
              globalThis as unknown as { rlhf: { engine: { engine: import('../../src/lib/engine/types').Engine } } }
            ).rlhf.engine.engine.groupStatus()
          )?.algo,
      );
      assert.equal(status, 'rloo');
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
});
