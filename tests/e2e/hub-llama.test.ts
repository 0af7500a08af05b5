/**
 * #19: a Llama-family checkpoint written by the independent PyTorch script
 * (scripts/golden/hf_models_reference.py → tests/fixtures/hf/llama-tiny: SmolLM2's layout with
 * grouped-query attention, RoPE, SwiGLU, tied head) loads through the folder picker with a
 * tokenizer.json, shows its plan, samples, and trains a few GRPO iterations with LoRA (PEFT's
 * Llama targets q_proj and v_proj).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openApp } from './harness';
import { trainBpe } from '../../src/lib/model/tokenizer';

const FIXTURE = 'tests/fixtures/hf/llama-tiny';
const tmp = mkdtempSync(join(tmpdir(), 'hub-llama-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The fixture as a Hub folder: its config and weights plus a byte-level BPE tokenizer.json of its vocabulary size. */
function llamaFolder(): string {
  const dir = join(tmp, 'llama-tiny');
  mkdirSync(dir);
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(FIXTURE, f), join(dir, f));
  const { vocab_size: V } = JSON.parse(readFileSync(join(FIXTURE, 'config.json'), 'utf8')) as { vocab_size: number };
  const tok = trainBpe([readFileSync('static/corpus/train.txt', 'utf8').slice(0, 100_000)], V - 257);
  assert.equal(tok.vocabSize, V);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tok.toJSON()));
  return dir;
}

describe('a Llama checkpoint from the Hub', () => {
  it('loads through the folder picker, shows its plan, samples, and trains GRPO with LoRA', async () => {
    const dir = llamaFolder();
    const app = await openApp('/?grpoBatchSize=8&grpoNumGenerations=4&grpoMaxCompletionLength=8&grpoLora=1#/model');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="model-card"]', { timeout: 60_000 });
      await page.setInputFiles('[data-testid="model-folder"]', dir);
      await page.waitForSelector('[data-testid="model-card"] h2:has-text("llama-tiny")', { timeout: 60_000 });
      const plan = (await page.textContent('[data-testid="model-plan"]'))!;
      assert.match(plan, /llama: 2 layers × 4 heads, width 32/);
      // 512×32 embedding (tied) + 2 × (q 32·32 + k,v 2·32·16 + o 32·32 + 3·32·64 MLP + 2·32 norms) + 32.
      const params = Number((await page.textContent('[data-testid="plan-params"]'))!.replace(/,/g, ''));
      assert.equal(params, 512 * 32 + 2 * (32 * 32 + 2 * 32 * 16 + 32 * 32 + 3 * 32 * 64 + 2 * 32) + 32);
      assert.match((await page.textContent('[data-testid="plan-files"]'))!, /tokenizer\.json/);

      await page.waitForSelector('[data-testid="generate"]:not([disabled])', { timeout: 30_000 });
      await page.click('[data-testid="generate"]');
      await page.waitForSelector('[data-testid="speed"]', { timeout: 60_000 });
      const texts = await page.locator('[data-testid="sample-text"]').allTextContents();
      assert.ok(
        texts.some((t) => t.length > 0),
        'the Llama model should write text',
      );

      // GRPO with LoRA on it: the adapters sit on q_proj and v_proj, and iterations run.
      await page.evaluate(() => (location.hash = '#/train'));
      await page.click('[data-testid="method-grpo"]');
      await page.waitForSelector('[data-testid="group-panel"][data-algo="grpo"]');
      assert.equal(await page.isChecked('[data-testid="grpo-lora"]'), true);
      await page.waitForSelector('[data-testid="grpo-lora-counts"]', { timeout: 60_000 });
      // r 8 on q_proj (32→32) and v_proj (32→16) in 2 layers: 2 × (8·(32+32) + 8·(32+16)).
      assert.match(
        (await page.textContent('[data-testid="grpo-lora-counts"]'))!.replace(/,/g, ''),
        new RegExp(`Trainable: ${2 * (8 * 64 + 8 * 48)} adapter parameters`),
      );
      await page.selectOption('[data-testid="group-reward-kind"]', 'labeller');
      await page.waitForSelector('[data-testid="group-start"]:not([disabled])', { timeout: 60_000 });
      await page.click('[data-testid="group-start"]');
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="group-iteration"]')?.textContent ?? '0') >= 2,
        undefined,
        { timeout: 180_000 },
      );
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });
});
