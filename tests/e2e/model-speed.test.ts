/**
 * #19: the model card's "expect about N s per iteration here". A Hub-style GPT-2 folder loads
 * through the folder picker; Measure times the pieces of a LoRA iteration in the worker (the
 * page stays responsive meanwhile) and the card shows seconds per GRPO and per PPO iteration at
 * their default settings; the model still samples afterwards (it was timed on a copy).
 * Fixture: tests/fixtures/hub/gpt2-tiny (scripts/golden/hub_gpt2_tiny.py).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openApp } from './harness';

const FIXTURE = 'tests/fixtures/hub/gpt2-tiny';

describe('model card speed estimate', () => {
  it('Measure on a loaded checkpoint shows seconds per GRPO and PPO iteration with LoRA; the model still samples', async () => {
    const app = await openApp('/#/model');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="model-card"]', { timeout: 60_000 });
      await page.setInputFiles('[data-testid="model-folder"]', FIXTURE);
      await page.waitForSelector('[data-testid="model-card"] h2:has-text("gpt2-tiny")', { timeout: 60_000 });
      assert.equal(await page.locator('[data-testid="model-speed-grpo"]').count(), 0, 'no estimate before measuring');
      await page.click('[data-testid="model-speed-measure"]:not([disabled])');
      // The work runs in the worker: the page answers a frame while it measures.
      const frameMs = await page.evaluate(
        () =>
          new Promise<number>((resolve) => {
            const t0 = performance.now();
            requestAnimationFrame(() => resolve(performance.now() - t0));
          }),
      );
      assert.ok(frameMs < 1000, `a frame took ${frameMs} ms while measuring`);
      await page.waitForSelector('[data-testid="model-speed-grpo"]', { timeout: 120_000 });
      const grpo = (await page.textContent('[data-testid="model-speed-grpo"]'))!.replace(/\s+/g, ' ');
      const ppo = (await page.textContent('[data-testid="model-speed-ppo"]'))!.replace(/\s+/g, ' ');
      const m =
        /^expect about ([\d.]+) (s|min|h) per GRPO iteration \(4 prompts × G 4, 24 new tokens\) with LoRA here$/.exec(
          grpo,
        );
      assert.ok(m, grpo);
      assert.ok(Number(m[1]) > 0, grpo);
      const p = /^about ([\d.]+) (s|min|h) per PPO iteration \(16 prompts, 24 new tokens, 4 epochs\)$/.exec(ppo);
      assert.ok(p, ppo);
      assert.ok(Number(p[1]) > 0, ppo);
      assert.match((await page.textContent('[data-testid="model-speed"]'))!, /a LoRA training step [\d.]+ m?s/);
      // The training step's memory at the defaults' step rows, against the backend's budget (wasm here).
      const mem = (await page.locator('[data-testid="model-speed-memory"]').allTextContents()).map((t) =>
        t.replace(/\s+/g, ' '),
      );
      assert.equal(mem.length, 2, mem.join(' | '));
      for (const [i, who] of [
        [0, 'GRPO needs about [\\d.]+ GiB at batch 16'],
        [1, 'PPO needs about [\\d.]+ GiB at batch 8'],
      ] as const) {
        const r = new RegExp(`^${who}: (fits|does not fit) wasm's 4\\.0 GiB heap — batch ≤ (\\d+) fits$`).exec(mem[i]);
        assert.ok(r, mem[i]);
        // The tiny fixture fits at the default batch, and more rows than that.
        assert.equal(r[1], 'fits', mem[i]);
        assert.ok(Number(r[2]) >= (i === 0 ? 16 : 8), mem[i]);
      }
      // The loaded model is untouched and still samples.
      await page.waitForSelector('[data-testid="generate"]:not([disabled])', { timeout: 30_000 });
      await page.click('[data-testid="generate"]');
      await page.waitForSelector('[data-testid="speed"]', { timeout: 60_000 });
      const texts = await page.locator('[data-testid="sample-text"]').allTextContents();
      assert.ok(
        texts.some((t) => t.length > 0),
        'samples should have new text',
      );
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });
});
