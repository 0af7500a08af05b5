/**
 * GRPO runs saved and resumed like PPO runs: a quick GRPO run (checkpoint every iteration) is
 * saved to IndexedDB, listed on the Runs page as GRPO, survives a reload, and resumes from the
 * saved iteration with its curves, then trains on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openApp } from './harness';

const MODEL_TIMEOUT = 120_000;
const ITER_TIMEOUT = 180_000;

const iteration = () => Number(document.querySelector('[data-testid="group-iteration"]')?.textContent ?? '-1');

describe('GRPO runs: saved, listed, resumed after a reload', () => {
  it('a quick GRPO run is saved, appears on the Runs page as GRPO, survives a reload and resumes', async () => {
    const app = await openApp(
      '/?grpoBatchSize=4&grpoNumGenerations=2&grpoMaxCompletionLength=6&checkpointEvery=1#/train',
    );
    const { page } = app;
    try {
      await page.click('[data-testid="method-grpo"]');
      await page.waitForSelector('[data-testid="group-panel"][data-algo="grpo"]');
      await page.selectOption('[data-testid="group-reward-kind"]', 'labeller');
      await page.waitForSelector('[data-testid="group-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="group-start"]');
      await page.waitForFunction(
        (n) => Number(document.querySelector('[data-testid="group-iteration"]')?.textContent ?? '0') >= n,
        2,
        {
          timeout: ITER_TIMEOUT,
        },
      );
      await page.click('[data-testid="group-pause"]');
      await page.waitForSelector('[data-testid="group-resume"]', { timeout: ITER_TIMEOUT });
      const reached = await page.evaluate(iteration);
      assert.ok(reached >= 2, `iteration ${reached}`);
      // Saved on pause: the record's iteration is the one reached, its tensors are chunks.
      await page.waitForFunction(
        async (n) => {
          const db = await new Promise<IDBDatabase>((res, rej) => {
            const req = indexedDB.open('rlhf-playground');
            req.onsuccess = () => res(req.result);
            req.onerror = () => rej(req.error);
          });
          const all = await new Promise<{ kind: string; state: { iteration: number } }[]>((res) => {
            const r = db.transaction('runs').objectStore('runs').getAll();
            r.onsuccess = () => res(r.result);
          });
          db.close();
          return all.some((r) => r.kind === 'grpo' && r.state.iteration === n);
        },
        reached,
        { timeout: ITER_TIMEOUT },
      );

      // Listed on the Runs page as a GRPO run.
      await page.click('nav a[href="#/runs"]');
      const row = page.locator('[data-testid="run-row"][data-kind="grpo"]');
      await row.waitFor();
      assert.equal(await row.count(), 1);
      assert.equal((await row.locator('[data-testid="run-kind"]').textContent())!.trim(), 'GRPO');
      assert.match((await row.locator('[data-testid="run-name"]').textContent())!, /^GRPO · /);

      // A reload: the saved run is offered on the Train page and resumes at the same iteration.
      await page.reload();
      await page.click('nav a[href="#/train"]');
      await page.click('[data-testid="method-grpo"]');
      const resume = page.locator('[data-testid="group-resume-saved"]');
      await resume.waitFor({ timeout: MODEL_TIMEOUT });
      await page.waitForSelector('[data-testid="group-resume-saved"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      assert.match((await resume.textContent())!, new RegExp(`iteration ${reached}\\)`));
      await resume.click();
      await page.waitForFunction(
        (n) => Number(document.querySelector('[data-testid="group-iteration"]')?.textContent ?? '-1') === n,
        reached,
      );
      // Its curves came back with it, and its settings.
      await page.waitForSelector('[data-metric="reward"] [data-testid="chart-value"]:not(:empty)');
      assert.equal(await page.inputValue('[data-testid="grpo-batchSize"]'), '4');
      const status = await page.evaluate(async () => {
        const e = (
          globalThis as unknown as { rlhf: { engine: { engine: import('../../src/lib/engine/types').Engine } } }
        ).rlhf.engine.engine;
        return e.groupStatus();
      });
      assert.equal(status?.algo, 'grpo');
      assert.equal(status?.iteration, reached);
      // It trains on from there.
      await page.click('[data-testid="group-resume"]');
      await page.waitForFunction(
        (n) => Number(document.querySelector('[data-testid="group-iteration"]')?.textContent ?? '0') > n,
        reached,
        { timeout: ITER_TIMEOUT },
      );
      await page.click('[data-testid="group-pause"]');
      await page.waitForSelector('[data-testid="group-resume"]', { timeout: ITER_TIMEOUT });
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
});
