import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { openApp } from './harness';

const MODEL_TIMEOUT = 120_000;
const RUN_TIMEOUT = 300_000;

async function setNumber(page: Page, testId: string, value: number): Promise<void> {
  const input = page.locator(`[data-testid="${testId}"]`);
  await input.fill(String(value));
  await input.dispatchEvent('change');
}

/** One SFT run on the typed demonstrations; waits until it is saved as a run. */
async function sftRun(page: Page): Promise<void> {
  await page.waitForSelector('[data-testid="sft-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
  await page.click('[data-testid="sft-start"]');
  await page.waitForSelector('[data-testid="tune-run-saved"][data-saved="true"]', { timeout: RUN_TIMEOUT });
}

const rowOf = (page: Page, n: number, kind = 'sft') =>
  page.locator(`[data-testid="run-row"][data-kind="${kind}"]`).nth(n);

describe('runs page', () => {
  it('SFT and PPO runs are saved, overlaid, sampled side by side, judged; a deleted parent and lost weights say so; a reload keeps them', async () => {
    const app = await openApp('/#/train');
    const { page } = app;
    page.on('dialog', (d) => void d.accept());
    try {
      await page.waitForSelector('[data-testid="stage-train"]');
      await page.click('[data-testid="method-sft"]');
      await page.waitForSelector('[data-testid="sft-panel"]');
      await page.fill('[data-testid="demo-prompt"]', 'The movie was');
      await page.fill('[data-testid="demo-completion"]', ' a quiet triumph, and I loved every minute of it.');
      await page.click('[data-testid="demo-add"]');
      await page.waitForSelector('[data-testid="demo-item"]');
      await setNumber(page, 'sft-epochs', 3);
      await setNumber(page, 'sft-lr', 0.001);

      // Run 1 from the bundled model; its model becomes the loaded one.
      await sftRun(page);
      const firstName = (await page.textContent('[data-testid="tune-run-saved"] a'))!.replace(/[“”]/g, '');
      await page.click('[data-testid="tune-adopt"]');
      await page.waitForSelector('[data-testid="tuned-model"]', { state: 'detached', timeout: 60_000 });
      // Run 2 starts from run 1's weights.
      await sftRun(page);
      await page.click('[data-testid="tune-discard"]');

      // A short PPO run (also from run 1's weights), paused after its first checkpoint.
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
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="run-row"]').length === 3);
      // Newest first: run 2, whose parent is run 1.
      const childText = (await rowOf(page, 0).textContent())!;
      assert.match(childText, new RegExp(`run “${firstName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}”`));
      assert.equal(await page.locator('[data-testid="parent-deleted"]').count(), 0);

      // Overlay: both runs on a metric they share (SFT loss), one line each with points.
      await rowOf(page, 0).locator('[data-testid="run-select"]').check();
      await rowOf(page, 1).locator('[data-testid="run-select"]').check();
      await page.waitForSelector('[data-testid="overlay-chart"][data-series="2"]');
      await page.selectOption('[data-testid="overlay-metric"]', 'loss');
      const points = await page.$$eval('[data-testid="overlay-series"]', (gs) =>
        gs.map((g) => Number(g.getAttribute('data-points'))),
      );
      assert.deepEqual(points.length, 2);
      assert.ok(
        points.every((n) => n >= 3),
        `each run has its loss curve: ${points}`,
      );
      // Diversity of the evaluation samples is offered too.
      const options = await page.$$eval('[data-testid="overlay-metric"] option', (os) => os.map((o) => o.textContent));
      assert.ok(options.includes('eval/distinct_1'), `diversity offered: ${options.join(', ')}`);

      // The PPO run joins: its curves have its own metric names, diversity is common to all three.
      await rowOf(page, 0, 'ppo').locator('[data-testid="run-select"]').check();
      await page.waitForSelector('[data-testid="overlay-chart"][data-series="3"]');
      const common = await page.$$eval('[data-testid="overlay-metric"] optgroup[label^="In all"] option', (os) =>
        os.map((o) => o.textContent),
      );
      assert.ok(common.includes('eval/distinct_2'), `common metrics: ${common.join(', ')}`);
      assert.ok(!common.includes('loss'), 'SFT loss is not a PPO metric');

      // Side-by-side samples on the same prompts (the PPO run from its saved policy weights).
      await page.click('[data-testid="runs-sample"]');
      await page.waitForSelector('[data-testid="runs-samples"]', { timeout: RUN_TIMEOUT });
      await page.waitForSelector('[data-testid="runs-sample"]:not([disabled])', { timeout: RUN_TIMEOUT });
      assert.equal(await page.locator('[data-testid="run-sample-error"]').count(), 0);
      assert.equal(await page.locator('[data-testid="run-sample"]').count(), 12);

      // A scripted labeller judges every pair on every prompt: 4 comparisons in each off-diagonal cell.
      await page.selectOption('[data-testid="judge-kind"]', 'length');
      await page.click('[data-testid="runs-judge"]');
      const ns = await page.$$eval('[data-testid="win-table"] [data-testid="win-cell"]', (cs) =>
        cs.map((c) => Number(c.getAttribute('data-n'))),
      );
      assert.deepEqual(ns, [4, 4, 4, 4, 4, 4]);

      // Blind mode: a key press records a pick.
      await page.click('[data-testid="blind-start"]');
      await page.waitForSelector('[data-testid="blind-progress"][data-done="0"]');
      await page.keyboard.press('1');
      await page.waitForSelector('[data-testid="blind-progress"][data-done="1"]');
      const blindNs = await page.$$eval('[data-testid="blind-table"] [data-testid="win-cell"]', (cs) =>
        cs.map((c) => Number(c.getAttribute('data-n'))),
      );
      assert.deepEqual(
        blindNs.reduce((a, b) => a + b, 0),
        2,
        `one pick lands in two cells: ${blindNs}`,
      );

      // Delete the parent: the child stays, marked, with its curves.
      await rowOf(page, 1).locator('[data-testid="run-delete"]').click();
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="run-row"]').length === 2);
      // Both the SFT child and the PPO run started from it.
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="parent-deleted"]').length === 2);

      // Weights gone under a run: a clear message, the run and the loaded model stay.
      await page.evaluate(async () => {
        const db = await new Promise<IDBDatabase>((res, rej) => {
          const r = indexedDB.open('rlhf-playground');
          r.onsuccess = () => res(r.result);
          r.onerror = () => rej(r.error);
        });
        const tx = db.transaction('checkpoints', 'readwrite');
        tx.objectStore('checkpoints').clear();
        await new Promise((res) => (tx.oncomplete = res));
        db.close();
      });
      await rowOf(page, 0).locator('[data-testid="run-adopt"]').click();
      const err = (await page.textContent('[data-testid="run-error"]'))!;
      assert.match(err, /weights of run .* are gone/);
      assert.match(err, /loaded model is unchanged/);

      // A reload keeps the run and the mark.
      await page.reload();
      await page.waitForSelector('[data-testid="stage-runs"]');
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="run-row"]').length === 2);
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="parent-deleted"]').length === 2);
      assert.equal(await rowOf(page, 0).count(), 1);
      assert.equal(await rowOf(page, 0, 'ppo').count(), 1);

      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });
});
