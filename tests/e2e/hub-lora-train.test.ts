/**
 * #19: what a researcher does with a checkpoint from the Hub. A GPT-2-shaped and a Llama-shaped
 * model written by the independent PyTorch script (scripts/golden/hf_models_reference.py →
 * tests/fixtures/hf/{gpt2-tiny,llama-tiny}, with a byte-level BPE tokenizer.json of their
 * vocabulary size) load through the folder picker; a scripted length labeller labels pairs of
 * the model's own samples (random weights write no words a sentiment lexicon knows, so it would
 * call most pairs ties); the Reward page trains a LoRA reward model on them (held-out accuracy
 * and the adapter counts shown); the Train page runs PPO with LoRA against that reward model; the
 * Data page's hand-off bundle carries that reward model as GPT2ForSequenceClassification or
 * LlamaForSequenceClassification (with its score_offset), and, where Debian's PyTorch is,
 * scripts/golden/check_handoff.py accepts its names and shapes. After a reload (the bundled model
 * is loaded again) the Train page still offers the restored reward model, and PPO on it is refused
 * with a message: it reads another tokenizer's ids.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { openApp } from './harness';
import { trainBpe } from '../../src/lib/model/tokenizer';
import { readZip } from '../../src/lib/data/zip';

const tmp = mkdtempSync(join(tmpdir(), 'hub-lora-train-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The fixture `name` as a Hub folder: config, weights and a tokenizer.json of its vocabulary size. */
function hubFolder(name: string): string {
  const fixture = join('tests/fixtures/hf', name);
  const dir = join(tmp, name);
  mkdirSync(dir);
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(fixture, f), join(dir, f));
  const { vocab_size: V } = JSON.parse(readFileSync(join(fixture, 'config.json'), 'utf8')) as { vocab_size: number };
  const tok = trainBpe([readFileSync('static/corpus/train.txt', 'utf8').slice(0, 100_000)], V - 257);
  assert.equal(tok.vocabSize, V);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tok.toJSON()));
  return dir;
}

/** As harness.ts `labelWithSentimentBot`, with the length labeller (target 12 words). */
async function labelWithLengthBot(page: Page, n: number): Promise<void> {
  await page.click('nav a[href="#/feedback"]');
  await page.getAttribute('[data-testid="pair"]', 'data-item', { timeout: 120_000 });
  await page.getByLabel('Max new tokens').fill('16');
  await page.click('[data-testid="studio-status"]');
  await page.click('[data-testid="add-labeller"]');
  await page.selectOption('[data-testid="labeller-kind"]', 'length');
  await page.fill('[data-testid="annotator-name"]', 'length-bot');
  await page.click('[data-testid="create-annotator"]');
  await page.waitForSelector('[data-testid="auto-label"]');
  await page.fill('[data-testid="auto-n"]', String(n));
  await page.click('[data-testid="auto-start"]');
  await page.waitForSelector('[data-testid="auto-status"][data-running="false"]', { timeout: 300_000 });
}

/**
 * Expected adapter counts at rank 8 on PEFT's default targets: GPT-2's c_attn (C → 3C) in each
 * layer; Llama's q_proj (C → C) and v_proj (C → kv width) in each layer.
 */
const CASES = [
  {
    name: 'gpt2-tiny',
    adapters: 2 * 8 * (32 + 3 * 32),
    llama: false,
    cls: 'GPT2ForSequenceClassification',
    rmTensors: 2 + 2 * 12 + 2 + 1,
  },
  {
    name: 'llama-tiny',
    adapters: 2 * (8 * (32 + 32) + 8 * (32 + 16)),
    llama: true,
    cls: 'LlamaForSequenceClassification',
    rmTensors: 1 + 2 * 9 + 1 + 1,
  },
];

const PYTHON = '/usr/bin/python3';
function hasTorch(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const URL =
  '/?rmMode=full&rmLora=1&rmPooling=last&rmEpochs=3&rmBatch=8' +
  '&lora=1&adaptiveKl=off&batchSize=4&maxNewTokens=8&ppoEpochs=1#/model';

describe('a Hub checkpoint: LoRA reward model, then PPO with LoRA', () => {
  for (const c of CASES)
    it(`${c.name}: loads through the picker, trains a LoRA reward model from labels, runs PPO with LoRA on it`, async () => {
      const dir = hubFolder(c.name);
      const app = await openApp(URL);
      const { page } = app;
      try {
        await page.waitForSelector('[data-testid="model-card"]', { timeout: 60_000 });
        await page.setInputFiles('[data-testid="model-folder"]', dir);
        await page.waitForSelector(`[data-testid="model-card"] h2:has-text("${c.name}")`, { timeout: 60_000 });

        // Pairs of the imported model's samples, labelled by the length labeller.
        await labelWithLengthBot(page, 32);

        // The reward model: full mode with LoRA (from the URL), trained on those pairs.
        await page.click('nav a[href="#/reward"]');
        await page.click('text=Reload data');
        await page.waitForFunction(
          () => parseInt(document.querySelector('[data-testid="pair-count"] strong')?.textContent ?? '0', 10) >= 8,
          undefined,
          { timeout: 30_000 },
        );
        assert.equal(await page.inputValue('[data-testid="rm-mode"]'), 'full');
        assert.equal(await page.isChecked('[data-testid="rm-lora"]'), true);
        const counts = (await page.textContent('[data-testid="rm-lora-counts"]'))!.replace(/,/g, '');
        assert.match(counts, new RegExp(`Trainable: ${c.adapters} adapter parameters`));
        await page.click('[data-testid="train-rm"]');
        await page.waitForSelector('[data-testid="rm-item"]', { timeout: 300_000 });
        assert.equal(await page.$('[data-testid="rm-error"]'), null);
        const acc = (await page.textContent('[data-testid="rm-accuracy"]'))!.replace(/\s+/g, ' ');
        assert.match(acc, /held-out \d+\.\d% on \d+ pairs/);
        // The saved model says it was trained with LoRA.
        assert.match((await page.textContent('[data-testid="rm-item"] label'))!, /· full \+ LoRA r8 ·/);
        // The inspector scores text with it, through the imported tokenizer.
        await page.click('[data-testid="score-text"]');
        const score = Number(await page.textContent('[data-testid="inspect-score"]', { timeout: 30_000 }));
        assert.ok(Number.isFinite(score), `score ${score}`);

        // PPO with LoRA against that reward model.
        await page.click('nav a[href="#/train"]');
        await page.waitForSelector('[data-testid="stage-train"]');
        await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])', { timeout: 120_000 });
        assert.equal(await page.inputValue('[data-testid="reward-kind"]'), 'reward-model');
        assert.equal(await page.isChecked('[data-testid="ppo-lora"]'), true);
        assert.match(
          (await page.textContent('[data-testid="ppo-lora-counts"]'))!.replace(/,/g, ''),
          new RegExp(`Trainable: ${c.adapters} adapter parameters`),
        );
        await page.click('[data-testid="ppo-start"]');
        await page.waitForFunction(
          () => Number(document.querySelector('[data-testid="ppo-iteration"]')?.textContent ?? '0') >= 2,
          undefined,
          { timeout: 180_000 },
        );
        const scores = (await page.textContent('[data-metric="objective/scores"] [data-testid="chart-value"]'))!;
        assert.ok(Number.isFinite(parseFloat(scores)), `objective/scores shows a number, got "${scores}"`);
        assert.equal(await page.$('[data-testid="ppo-error"]'), null);
        const config = await page.evaluate(async () => {
          const e = (
            globalThis as unknown as { rlhf: { engine: { engine: import('../../src/lib/engine/types').Engine } } }
          ).rlhf.engine.engine;
          const st = await e.ppoStatus();
          return st && { lora: st.config.lora, reward: st.setup.reward.kind };
        });
        assert.deepEqual(config, { lora: true, reward: 'reward-model' });
        await page.click('[data-testid="ppo-pause"]');
        await page.waitForSelector('[data-testid="ppo-resume"]', { timeout: 180_000 });

        // The hand-off bundle carries the reward model in the HF class of its architecture.
        await page.click('nav a[href="#/data"]');
        await page.waitForSelector('[data-testid="handoff-download"]:not([disabled])', { timeout: 120_000 });
        await page.waitForSelector('[data-testid="handoff-reward"]');
        assert.equal(await page.isChecked('[data-testid="handoff-reward"]'), true);
        assert.match((await page.textContent('[data-testid="handoff-panel"]'))!, new RegExp(c.cls));
        assert.equal(await page.locator('[data-testid="handoff-reward-offset"]').count(), c.llama ? 1 : 0);
        const [d] = await Promise.all([
          page.waitForEvent('download', { timeout: 60_000 }),
          page.click('[data-testid="handoff-download"]'),
        ]);
        await page.waitForSelector('[data-testid="handoff-status"]:has-text("With the reward model")');
        const files = readZip(new Uint8Array(readFileSync((await d.path())!)));
        const cfg = JSON.parse(new TextDecoder().decode(files.get('reward_model/config.json'))) as {
          architectures: string[];
          rlhf_playground: { pooling: string; score_offset: number };
        };
        assert.deepEqual(cfg.architectures, [c.cls]);
        assert.equal(cfg.rlhf_playground.pooling, 'last');
        assert.equal(cfg.rlhf_playground.score_offset !== 0, c.llama);
        if (hasTorch()) {
          const dir = join(tmp, `${c.name}-bundle`);
          for (const [name, data] of files) {
            mkdirSync(dirname(join(dir, name)), { recursive: true });
            writeFileSync(join(dir, name), data);
          }
          const out = execFileSync(PYTHON, ['scripts/golden/check_handoff.py', dir], { encoding: 'utf8' });
          assert.match(out, new RegExp(`^ok: reward model: ${c.rmTensors} tensors under ${c.cls} names$`, 'm'));
        } else console.log('skipped the PyTorch check: /usr/bin/python3 has no torch');
        assert.deepEqual(app.errors, []);

        // After a reload the bundled model is loaded again, and the reward model of the Hub model's
        // tokenizer stays active: PPO on it is refused with a message, not run on ids it never saw.
        await page.reload();
        await page.click('nav a[href="#/train"]');
        await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])', { timeout: 120_000 });
        const loaded = await page.evaluate(async () => {
          const e = (
            globalThis as unknown as { rlhf: { engine: { engine: import('../../src/lib/engine/types').Engine } } }
          ).rlhf.engine.engine;
          return (await e.modelInfo())?.name;
        });
        assert.equal(loaded, 'tiny-gpt');
        // The restored reward model is the Train page's reward, as before the reload.
        await page.waitForFunction(
          () =>
            (document.querySelector('[data-testid="reward-kind"]') as HTMLSelectElement | null)?.value ===
            'reward-model',
          undefined,
          { timeout: 60_000 },
        );
        await page.click('[data-testid="ppo-start"]');
        await page.waitForSelector('[data-testid="ppo-error"]', { timeout: 60_000 });
        assert.match(
          (await page.textContent('[data-testid="ppo-error"]'))!,
          /was trained on a model with 512 tokens, but the loaded model has 1,281: load the model it was trained on/,
        );
        assert.deepEqual(app.foreignRequests, []);
      } finally {
        await app.close();
      }
    });
});
