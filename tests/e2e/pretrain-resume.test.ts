/**
 * Pretraining end to end in Chromium, the second half of issue 17: text in → a BPE trained on it
 * in the worker (progress, newest merges) → a few steps of a micro model → pause (checkpoint in
 * IndexedDB) → reload → the page offers the run → resume from the checkpoint's step → use as base
 * model → sample; the Runs page lists the pretraining run. Continue-pretraining the bundled model
 * on a text it never saw lowers its validation loss there, and PPO then runs on the result. Bad
 * input gets a clear message and nothing already added or saved is lost.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { openApp } from './harness';
import { readZip } from '../../src/lib/data/zip';

const MODEL_TIMEOUT = 120_000;
const RUN_TIMEOUT = 300_000;

/** The fixture corpus, one document per paragraph. */
const TEXT = readFileSync('tests/fixtures/tiny-corpus/train.txt', 'utf8').trim().split('\n').join('\n\n');

async function setNumber(page: Page, testId: string, value: number): Promise<void> {
  const input = page.locator(`[data-testid="${testId}"]`);
  await input.fill(String(value));
  await input.dispatchEvent('change');
}

const num = async (page: Page, sel: string, attr: string) => Number(await page.getAttribute(sel, attr));

describe('pretrain: tokenizer, checkpoints, resume after reload, continue pretraining', () => {
  it('text in → tokenizer → steps → pause → reload → resume from the checkpoint → use as base → sample', async () => {
    const app = await openApp('/#/pretrain?quick=1');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="stage-pretrain"]');
      // The bundled public-domain texts are offered beside the app's corpus.
      const choices = await page.locator('[data-testid="pretrain-sample-choice"] option').allTextContents();
      assert.ok(choices.some((c) => /Devil’s Dictionary/.test(c)) && choices.some((c) => /King James/.test(c)));

      await page.fill('[data-testid="pretrain-paste"]', TEXT);
      await page.click('[data-testid="pretrain-add-text"]');
      await page.waitForSelector('[data-testid="pretrain-stats"]');

      // Bad input after good input: messages, and the text already added stays.
      await page.setInputFiles('[data-testid="pretrain-files"]', [
        { name: 'empty.txt', mimeType: 'text/plain', buffer: Buffer.alloc(0) },
      ]);
      await page.waitForSelector('[data-testid="pretrain-input-error"]');
      assert.match((await page.textContent('[data-testid="pretrain-input-error"]'))!, /empty\.txt/);
      await page.setInputFiles('[data-testid="pretrain-files"]', [
        { name: 'blank.txt', mimeType: 'text/plain', buffer: Buffer.from('\n\n   \n\n') },
      ]);
      await page.waitForSelector('[data-testid="pretrain-input-error"]:has-text("blank.txt")');
      assert.equal(await page.locator('[data-testid="pretrain-source"]').count(), 1);

      // Tokenizer: a byte-level BPE of 512 tokens trained on the text, with its progress.
      await page.waitForSelector('[data-testid="pretrain-tok-train"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.selectOption('[data-testid="pretrain-vocab"]', '512');
      await page.click('[data-testid="pretrain-tok-train"]');
      await page.waitForSelector('[data-testid="pretrain-tok-trained"]:checked', { timeout: MODEL_TIMEOUT });
      const merges = await num(page, '[data-testid="pretrain-tok-progress"]', 'data-merges');
      assert.ok(merges > 100 && merges <= 255, `merges learned: ${merges}`);
      assert.ok((await page.locator('[data-testid="pretrain-tok-progress"] code').count()) > 0, 'newest merges shown');
      assert.match(
        (await page.textContent('[data-testid="pretrain-tokenizer"]'))!,
        /A byte-level BPE trained on this text: \d+ tokens/,
      );

      // A micro model: its measured seconds per step are shown before starting.
      await page.selectOption('[data-testid="pretrain-preset"]', 'micro');
      await page.waitForSelector('[data-testid="pretrain-step-time"][data-seconds]:not([data-seconds=""])', {
        timeout: MODEL_TIMEOUT,
      });
      assert.ok((await num(page, '[data-testid="pretrain-step-time"]', 'data-seconds')) > 0);
      assert.match((await page.textContent('[data-testid="pretrain-step-time"]'))!, /per step .* take about/);
      await setNumber(page, 'pt-steps', 30);
      await setNumber(page, 'pt-batchSize', 4);
      await setNumber(page, 'pt-lr', 0.01);
      await setNumber(page, 'pt-warmup', 3);
      await setNumber(page, 'pt-evalEvery', 5);
      await setNumber(page, 'pt-sampleEvery', 10);
      await page.click('[data-testid="pretrain-start"]');
      await page.waitForSelector('[data-testid="pretrain-pause"]', { timeout: MODEL_TIMEOUT });
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="pretrain-chart"]')?.getAttribute('data-train-points')) >= 8,
        undefined,
        { timeout: RUN_TIMEOUT },
      );
      await page.click('[data-testid="pretrain-pause"]');
      await page.waitForSelector('[data-testid="pretrain-resume"]', { timeout: 60_000 });
      const pausedAt = await num(page, '[data-testid="pretrain-run"]', 'data-step');
      assert.ok(pausedAt >= 8 && pausedAt < 30, `paused at ${pausedAt}`);
      await page.waitForSelector(
        `[data-testid="pretrain-saved"][data-step="${pausedAt}"]:has-text("Checkpoint saved")`,
        {
          timeout: 60_000,
        },
      );
      const vocab = Number(
        (await page.textContent('[data-testid="pretrain-size"]'))!.match(/\(([\d,]+) tokens\)/)![1].replace(/,/g, ''),
      );
      assert.ok(vocab <= 512, `the run uses the trained tokenizer (${vocab} tokens)`);

      // Reload: the page offers the run at its saved step; resuming goes on from there.
      await page.reload();
      await page.waitForSelector('[data-testid="pretrain-resumable"]', { timeout: MODEL_TIMEOUT });
      assert.equal(Number(await page.textContent('[data-testid="pretrain-resumable-step"]')), pausedAt);
      await page.waitForSelector('[data-testid="pretrain-resume-saved"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="pretrain-resume-saved"]');
      await page.waitForSelector('[data-testid="pretrain-run"][data-step="30"]', { timeout: RUN_TIMEOUT });
      await page.waitForSelector('[data-testid="pretrain-adopt"]:not([disabled])', { timeout: 60_000 });
      const chart = '[data-testid="pretrain-chart"]';
      // Steps 1..paused came back from the checkpoint's history, the rest were trained after the reload: none twice.
      assert.equal(await num(page, chart, 'data-train-points'), 30);
      assert.ok((await num(page, chart, 'data-last-val')) < (await num(page, chart, 'data-first-val')));
      await page.waitForSelector('[data-testid="pretrain-saved"][data-step="30"]', { timeout: 60_000 });
      assert.equal(await page.locator('[data-testid="pretrain-resume"]').count(), 0, 'a finished run has no Resume');

      // Use as base model → the Model page samples from it, and its card tells where it came from.
      await page.click('[data-testid="pretrain-adopt"]');
      await page.waitForSelector('[data-testid="pretrain-adopted"]', { timeout: 60_000 });
      await page.click('nav a[href="#/model"]');
      await page.waitForSelector('[data-testid="model-card"]:has-text("pretrained micro")');
      assert.match(
        (await page.textContent('[data-testid="model-card"]'))!,
        /byte-level BPE of \d+ tokens trained on its text/,
      );
      await page.click('[data-testid="generate"]');
      await page.waitForSelector('[data-testid="speed"]', { timeout: 60_000 });
      const texts = await page.locator('[data-testid="sample-text"]').allTextContents();
      assert.ok(texts.some((t) => t.trim().length > 0));

      // The Runs page lists the pretraining run, finished.
      await page.click('nav a[href="#/runs"]');
      await page.waitForSelector('[data-testid="run-row"][data-kind="pretrain"]', { timeout: 30_000 });
      const row = '[data-testid="run-row"][data-kind="pretrain"]';
      assert.match((await page.textContent(row))!, /Pretraining/);
      // Exported from there: the model's three files (and its card) in a zip the app can load again.
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`${row} [data-testid="run-export"]`)]);
      const zip = readZip(new Uint8Array(readFileSync((await dl.path())!)));
      assert.deepEqual([...zip.keys()].sort(), [
        'config.json',
        'model.safetensors',
        'model_card.json',
        'tokenizer.json',
      ]);
      assert.ok(zip.get('model.safetensors')!.length > 10_000);
      // Renamed there: the run and the model its weights load as.
      page.once('dialog', (d) => void d.accept('My micro model'));
      await page.click(`${row} [data-testid="run-rename"]`);
      await page.waitForSelector(`${row}:has-text("My micro model")`);
      await page.click(`${row} [data-testid="run-adopt"]`);
      await page.click('nav a[href="#/model"]');
      await page.waitForSelector('[data-testid="model-card"]:has-text("My micro model")', { timeout: 60_000 });

      // A reload now offers nothing: the run is finished.
      await page.goto(app.origin + '/#/pretrain');
      await page.waitForSelector('[data-testid="pretrain-start"]', { timeout: MODEL_TIMEOUT });
      await page.waitForTimeout(1500);
      assert.equal(await page.locator('[data-testid="pretrain-resumable"]').count(), 0);
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });

  it('continue-pretraining the bundled model lowers its loss on a new text; PPO then runs on the result', async () => {
    const app = await openApp('/#/pretrain?quick=1');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="stage-pretrain"]');
      // One document cannot be split into training and validation: a clear message.
      await page.fill('[data-testid="pretrain-paste"]', 'A single paragraph of a few words.');
      await page.click('[data-testid="pretrain-add-text"]');
      await page.check('[data-testid="pretrain-continue"]');
      await page.waitForSelector('[data-testid="pretrain-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="pretrain-start"]');
      await page.waitForSelector('[data-testid="pretrain-error"]:has-text("needs at least two")');
      // Too short for one window of the bundled model (context 64): a clear message, the text stays.
      await page.fill('[data-testid="pretrain-paste"]', 'And a few more.');
      await page.click('[data-testid="pretrain-add-text"]');
      await page.click('[data-testid="pretrain-start"]');
      await page.waitForSelector('[data-testid="pretrain-error"]:has-text("Add more text")');
      assert.match((await page.textContent('[data-testid="pretrain-error"]'))!, /one window/);
      assert.equal(await page.locator('[data-testid="pretrain-source"]').count(), 2);
      await page.click('[data-testid="pretrain-source"] button');
      await page.click('[data-testid="pretrain-source"] button');

      // The Devil's Dictionary: English the bundled model (trained on WordNet examples) never saw.
      await page.selectOption('[data-testid="pretrain-sample-choice"]', 'devils-dictionary.txt');
      await page.click('[data-testid="pretrain-sample"]');
      await page.waitForSelector('[data-testid="pretrain-source"]:has-text("devils-dictionary.txt")');
      await setNumber(page, 'pt-steps', 12);
      await setNumber(page, 'pt-batchSize', 4);
      await setNumber(page, 'pt-lr', 0.001);
      await setNumber(page, 'pt-warmup', 2);
      await setNumber(page, 'pt-evalEvery', 6);
      await page.click('[data-testid="pretrain-start"]');
      await page.waitForSelector('[data-testid="pretrain-run"][data-step="12"]', { timeout: RUN_TIMEOUT });
      await page.waitForSelector('[data-testid="pretrain-adopt"]:not([disabled])', { timeout: 60_000 });
      const chart = '[data-testid="pretrain-chart"]';
      const first = await num(page, chart, 'data-first-val');
      const last = await num(page, chart, 'data-last-val');
      assert.ok(last < first - 0.05, `validation loss on the new text falls: ${first} → ${last}`);
      assert.equal(await num(page, '[data-testid="pretrain-size"]', 'data-params'), 965_504);

      await page.click('[data-testid="pretrain-adopt"]');
      await page.waitForSelector('[data-testid="pretrain-adopted"]', { timeout: 60_000 });

      // PPO on the result: the Train page's model is the continued one, and an iteration runs.
      await page.click('nav a[href="#/train"]');
      await page.waitForSelector('[data-testid="stage-train"]');
      await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.selectOption('[data-testid="reward-labeller"]', 'sentiment');
      await setNumber(page, 'cfg-batchSize', 4);
      await setNumber(page, 'cfg-maxNewTokens', 8);
      await setNumber(page, 'cfg-ppoEpochs', 1);
      await page.click('[data-testid="ppo-start"]');
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="ppo-iteration"]')?.textContent ?? '0') >= 1,
        undefined,
        { timeout: RUN_TIMEOUT },
      );
      await page.click('[data-testid="ppo-pause"]');
      await page.waitForSelector('[data-testid="ppo-resume"]', { timeout: RUN_TIMEOUT });
      await page.click('nav a[href="#/model"]');
      await page.waitForSelector('[data-testid="model-card"]:has-text("tiny-gpt + pretraining")');
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });
});
