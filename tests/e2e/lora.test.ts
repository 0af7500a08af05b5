/**
 * LoRA in the browser: GRPO with LoRA switched on from the URL table (the rows come from the
 * settings table; counts of trainable and frozen parameters shown; fixed once the run starts),
 * and a PEFT adapter picked on the Model page merged into the loaded model (a mismatched one is
 * refused and the model stays).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { openApp } from './harness';
import { Rng } from '../../src/lib/model/rng';
import { writeSafetensors, type TensorRecord } from '../../src/lib/model/weights';

const MODEL_TIMEOUT = 120_000;
const ITER_TIMEOUT = 180_000;

/** A PEFT adapter for the bundled model: rank `r` on every layer's c_attn, random A and B. */
function adapterFiles(r: number, configR = r): { name: string; mimeType: string; buffer: Buffer }[] {
  const cfg = JSON.parse(readFileSync('public/models/tiny-gpt/config.json', 'utf8')) as {
    n_embd: number;
    n_layer: number;
  };
  const C = cfg.n_embd;
  const rng = new Rng(7);
  const tensors = new Map<string, TensorRecord>();
  for (let l = 0; l < cfg.n_layer; l++) {
    const m = `base_model.model.transformer.h.${l}.attn.c_attn`;
    tensors.set(`${m}.lora_A.weight`, { shape: [r, C], data: rng.normalArray(r * C, 0.1) });
    tensors.set(`${m}.lora_B.weight`, { shape: [3 * C, r], data: rng.normalArray(3 * C * r, 0.1) });
  }
  const config = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: configR,
    lora_alpha: 16,
    lora_dropout: 0.05,
    target_modules: ['c_attn'],
    bias: 'none',
    fan_in_fan_out: true,
  };
  return [
    { name: 'adapter_config.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(config)) },
    {
      name: 'adapter_model.safetensors',
      mimeType: 'application/octet-stream',
      buffer: Buffer.from(writeSafetensors(tensors)),
    },
  ];
}

describe('LoRA', () => {
  it('GRPO with LoRA from the URL: the rows, the counts, fixed once running, the run trains adapters', async () => {
    const app = await openApp('/?grpoBatchSize=8&grpoNumGenerations=4&grpoMaxCompletionLength=8&grpoLora=1#/train');
    const { page } = app;
    try {
      await page.click('[data-testid="method-grpo"]');
      await page.waitForSelector('[data-testid="group-panel"][data-algo="grpo"]');
      assert.equal(await page.isChecked('[data-testid="grpo-lora"]'), true);
      assert.equal(await page.inputValue('[data-testid="grpo-loraR"]'), '8');
      assert.equal(await page.inputValue('[data-testid="grpo-loraTargetModules"]'), 'auto');
      await page.waitForSelector('[data-testid="grpo-lora-counts"]', { timeout: MODEL_TIMEOUT });
      assert.match(
        (await page.textContent('[data-testid="grpo-lora-counts"]'))!,
        /Trainable: [\d,]+ adapter parameters/,
      );
      // A bad target is refused at the input, with the table's words.
      await page.fill('[data-testid="grpo-loraTargetModules"]', 'q proj');
      await page.dispatchEvent('[data-testid="grpo-loraTargetModules"]', 'change');
      await page.waitForSelector('text=must be module names');
      await page.fill('[data-testid="grpo-loraTargetModules"]', 'c_attn, c_proj');
      await page.dispatchEvent('[data-testid="grpo-loraTargetModules"]', 'change');

      await page.selectOption('[data-testid="group-reward-kind"]', 'labeller');
      await page.waitForSelector('[data-testid="group-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="group-start"]');
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="group-iteration"]')?.textContent ?? '0') >= 1,
        undefined,
        { timeout: ITER_TIMEOUT },
      );
      const config = await page.evaluate(async () => {
        const e = (
          globalThis as unknown as { rlhf: { engine: { engine: import('../../src/lib/engine/types').Engine } } }
        ).rlhf.engine.engine;
        return (await e.groupStatus())?.config as { lora?: boolean; loraTargetModules?: string[] } | undefined;
      });
      assert.equal(config?.lora, true);
      assert.deepEqual(config?.loraTargetModules, ['c_attn', 'c_proj']);
      assert.equal(await page.isDisabled('[data-testid="grpo-lora"]'), true);
      await page.click('[data-testid="group-pause"]');
      await page.waitForSelector('[data-testid="group-resume"]', { timeout: ITER_TIMEOUT });
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('a PEFT adapter picked on the Model page is merged into the loaded model; a mismatched one is refused', async () => {
    const app = await openApp('/#/model');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="model-card"]', { timeout: MODEL_TIMEOUT });
      await page.waitForSelector('[data-testid="model-trainable"]');
      assert.match((await page.textContent('[data-testid="model-trainable"]'))!, /with LoRA/);
      await page.setInputFiles('[data-testid="model-files"]', adapterFiles(2, 4));
      await page.waitForSelector('[data-testid="notice"]:has-text("adapter was not loaded")');
      assert.match((await page.textContent('[data-testid="model-card"] h2'))!, /tiny-gpt/);
      assert.doesNotMatch((await page.textContent('[data-testid="model-card"] h2'))!, /LoRA/);
      await page.setInputFiles('[data-testid="model-files"]', adapterFiles(2));
      await page.waitForSelector('[data-testid="model-card"] h2:has-text("tiny-gpt + LoRA adapter")', {
        timeout: MODEL_TIMEOUT,
      });
      await page.click('[data-testid="generate"]');
      await page.waitForSelector('[data-testid="speed"]', { timeout: 60_000 });
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });
});
