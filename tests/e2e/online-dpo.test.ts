import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openApp } from './harness';

const MODEL_TIMEOUT = 120_000;
const ITER_TIMEOUT = 180_000;

type EngineHandle = { rlhf: { engine: { engine: import('../../src/lib/engine/types').Engine } } };

const iterationOf = (page: import('playwright-core').Page) =>
  page.evaluate(() => Number(document.querySelector('[data-testid="group-iteration"]')?.textContent ?? '0'));

describe('train page: online DPO', () => {
  it('online DPO trains on a scripted reward: iterations advance, TRL curves draw, the pair inspector, live β, pause, resume and stop', async () => {
    // A tiny run from the URL table: 2 prompts, each sampled twice, 8 tokens.
    const app = await openApp('/?quick=1&odpoBatchSize=2&odpoMaxNewTokens=8#/train');
    const { page } = app;
    try {
      await page.click('[data-testid="method-online-dpo"]');
      await page.waitForSelector('[data-testid="group-panel"][data-algo="online-dpo"]');
      assert.equal(await page.inputValue('[data-testid="online-dpo-batchSize"]'), '2');
      assert.equal(await page.inputValue('[data-testid="online-dpo-maxNewTokens"]'), '8');
      await page.selectOption('[data-testid="group-reward-kind"]', 'labeller');
      await page.selectOption('[data-testid="group-labeller"]', 'sentiment');
      await page.waitForSelector('[data-testid="group-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="group-start"]');
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="group-iteration"]')?.textContent ?? '0') >= 2,
        undefined,
        { timeout: ITER_TIMEOUT },
      );
      // TRL's metric names, drawn live.
      for (const m of ['objective/scores', 'objective/scores_margin', 'objective/kl', 'rewards/accuracies', 'loss'])
        await page.waitForSelector(`[data-metric="${m}"] [data-testid="chart-value"]:not(:empty)`);
      // The pair inspector: one judged pair per prompt, the chosen one scored at least as high.
      await page.waitForSelector('[data-testid="pair-inspector"]');
      const rows = await page.$$eval('[data-testid="pair"]', (trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
      );
      assert.equal(rows.length, 2);
      for (const r of rows) {
        assert.ok(r[1].trim().length > 0 && r[3].trim().length > 0, `empty completion in ${JSON.stringify(r)}`);
        assert.ok(parseFloat(r[2]) >= parseFloat(r[4]), `chosen scored below rejected: ${JSON.stringify(r)}`);
      }

      // The seed is fixed once the run has started; β is live and reaches the trainer's logged metrics.
      assert.equal(await page.isDisabled('[data-testid="online-dpo-seed"]'), true);
      const beta = page.locator('[data-testid="online-dpo-beta"]');
      await beta.fill('0.3');
      await beta.dispatchEvent('change');
      await page.waitForFunction(
        () =>
          parseFloat(document.querySelector('[data-metric="beta"] [data-testid="chart-value"]')?.textContent ?? '') ===
          0.3,
        undefined,
        { timeout: ITER_TIMEOUT },
      );
      // A bad live value is refused with a message; the run goes on.
      await beta.fill('0');
      await beta.dispatchEvent('change');
      await page.waitForSelector('[data-testid="group-config-error"]');
      assert.match((await page.textContent('[data-testid="group-config-error"]'))!, /beta|β/);

      // Pause: the iteration count stops.
      await page.click('[data-testid="group-pause"]');
      await page.waitForSelector('[data-testid="group-resume"]', { timeout: ITER_TIMEOUT });
      const paused = await iterationOf(page);
      await page.waitForTimeout(3000);
      assert.equal(await iterationOf(page), paused);
      const status = await page.evaluate(async () => {
        const s = await (globalThis as unknown as EngineHandle).rlhf.engine.engine.groupStatus();
        return s && { algo: s.algo, iteration: s.iteration, beta: s.config.beta };
      });
      assert.deepEqual(status, { algo: 'online-dpo', iteration: paused, beta: 0.3 });

      // Resume: it goes on from there.
      await page.click('[data-testid="group-resume"]');
      await page.waitForFunction(
        (n) => Number(document.querySelector('[data-testid="group-iteration"]')?.textContent ?? '0') > n,
        paused,
        { timeout: ITER_TIMEOUT },
      );
      // Stop while running: the iteration under way is dropped and the run forgotten, in the engine and on the page.
      await page.click('[data-testid="group-stop"]');
      await page.waitForSelector('[data-testid="pair-inspector"]', { state: 'detached', timeout: ITER_TIMEOUT });
      await page.waitForSelector('[data-testid="group-start"]:not([disabled])', { timeout: ITER_TIMEOUT });
      assert.equal(
        await page.evaluate(async () => (globalThis as unknown as EngineHandle).rlhf.engine.engine.groupStatus()),
        null,
      );
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
});
