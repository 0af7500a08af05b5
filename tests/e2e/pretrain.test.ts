/**
 * The Pretrain page end to end in Chromium: bad input gets a clear message, pasted text shows its
 * stats, a small model trains from scratch (pause and resume on the way) with its loss falling and
 * the unigram and bigram baselines drawn, and "Use as base model" makes the Model page use it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { openApp } from './harness';

const MODEL_TIMEOUT = 120_000;
const RUN_TIMEOUT = 300_000;

/** The fixture corpus, one document per paragraph. */
const TEXT = readFileSync('tests/fixtures/tiny-corpus/train.txt', 'utf8').trim().split('\n').join('\n\n');

async function setNumber(page: Page, key: string, value: number): Promise<void> {
  const input = page.locator(`[data-testid="pt-${key}"]`);
  await input.fill(String(value));
  await input.dispatchEvent('change');
}

const num = async (page: Page, sel: string, attr: string) => Number(await page.getAttribute(sel, attr));

describe('pretrain page', () => {
  it('text in → train a micro model (pause, resume) → loss falls, baselines drawn → use as base model → sample', async () => {
    const app = await openApp('/#/pretrain');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="stage-pretrain"]');

      // Bad input: a binary file and an empty paste are refused with a message; nothing is added.
      await page.setInputFiles('[data-testid="pretrain-files"]', [
        { name: 'photo.txt', mimeType: 'text/plain', buffer: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 1]) },
      ]);
      assert.match(
        (await page.textContent('[data-testid="pretrain-input-error"]'))!,
        /photo\.txt looks like a binary file/,
      );
      await page.setInputFiles('[data-testid="pretrain-files"]', [
        { name: 'latin1.txt', mimeType: 'text/plain', buffer: Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x6f, 0x6b]) },
      ]);
      await page.waitForSelector('[data-testid="pretrain-input-error"]:has-text("latin1.txt is not valid UTF-8")');
      assert.equal(await page.locator('[data-testid="pretrain-source"]').count(), 0);

      // The bundled sample adds up with a count, and can be removed again.
      await page.click('[data-testid="pretrain-sample"]');
      await page.waitForSelector('[data-testid="pretrain-source"]:has-text("sample.txt")');
      assert.ok((await num(page, '[data-testid="pretrain-stats"]', 'data-bytes')) > 150_000);
      await page.click('[data-testid="pretrain-source"] button');
      assert.equal(await page.locator('[data-testid="pretrain-source"]').count(), 0);

      // Pasted text: stats and a preview.
      await page.fill('[data-testid="pretrain-paste"]', TEXT);
      await page.click('[data-testid="pretrain-add-text"]');
      await page.waitForSelector('[data-testid="pretrain-stats"]');
      const docs = await num(page, '[data-testid="pretrain-stats"]', 'data-documents');
      assert.equal(docs, TEXT.split('\n\n').length);
      assert.ok((await page.textContent('[data-testid="pretrain-preview"]'))!.length > 100);

      // A micro model from scratch, briefly.
      await page.selectOption('[data-testid="pretrain-preset"]', 'micro');
      assert.ok((await num(page, '[data-testid="pretrain-size"]', 'data-params')) > 10_000);
      await setNumber(page, 'steps', 40);
      await setNumber(page, 'batchSize', 8);
      await setNumber(page, 'lr', 0.01);
      await setNumber(page, 'warmup', 5);
      await setNumber(page, 'evalEvery', 10);
      await setNumber(page, 'sampleEvery', 20);
      await page.waitForSelector('[data-testid="pretrain-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="pretrain-start"]');

      // Pause once a few steps ran, then resume: the step count goes on from where it stopped.
      await page.waitForSelector('[data-testid="pretrain-pause"]', { timeout: MODEL_TIMEOUT });
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="pretrain-chart"]')?.getAttribute('data-train-points')) >= 5,
        undefined,
        { timeout: RUN_TIMEOUT },
      );
      await page.click('[data-testid="pretrain-pause"]');
      await page.waitForSelector('[data-testid="pretrain-resume"]', { timeout: 60_000 });
      const pausedAt = await num(page, '[data-testid="pretrain-run"]', 'data-step');
      assert.ok(pausedAt >= 5 && pausedAt < 40, `paused at step ${pausedAt}`);
      await page.click('[data-testid="pretrain-resume"]');
      await page.waitForSelector('[data-testid="pretrain-run"][data-step="40"]', { timeout: RUN_TIMEOUT });
      await page.waitForSelector('[data-testid="pretrain-adopt"]:not([disabled])', { timeout: 60_000 });

      const chart = '[data-testid="pretrain-chart"]';
      assert.equal(await num(page, chart, 'data-train-points'), 40);
      const firstVal = await num(page, chart, 'data-first-val');
      const lastVal = await num(page, chart, 'data-last-val');
      const unigram = await num(page, chart, 'data-unigram');
      const bigram = await num(page, chart, 'data-bigram');
      assert.ok(lastVal < firstVal - 1, `validation loss falls: ${firstVal} → ${lastVal}`);
      assert.ok(bigram < unigram && unigram < firstVal, `baselines ${unigram} (unigram), ${bigram} (bigram)`);
      assert.ok(lastVal < unigram, `beats the unigram line: ${lastVal} < ${unigram}`);
      assert.equal(await page.locator('[data-testid="baseline-unigram"]').count(), 1);
      assert.equal(await page.locator('[data-testid="baseline-bigram"]').count(), 1);
      assert.match((await page.textContent('[data-testid="pretrain-val"]'))!, /nats\/token · \d+\.\d{3} bits\/byte/);
      assert.match((await page.textContent('[data-testid="pretrain-unigram"]'))!, /bits\/byte/);
      assert.equal(await num(page, '[data-testid="pretrain-samples"]', 'data-step'), 40);

      // Use as base model: the Model page shows it and samples from it.
      await page.click('[data-testid="pretrain-adopt"]');
      await page.waitForSelector('[data-testid="pretrain-adopted"]', { timeout: 60_000 });
      await page.click('nav a[href="#/model"]');
      await page.waitForSelector('[data-testid="model-card"]:has-text("pretrained micro")');
      const params = Number((await page.textContent('[data-testid="model-params"]'))!.replace(/,/g, ''));
      assert.ok(params < 100_000, `the micro model is loaded (${params} parameters)`);
      await page.click('[data-testid="generate"]');
      await page.waitForSelector('[data-testid="speed"]', { timeout: 60_000 });
      const texts = await page.locator('[data-testid="sample-text"]').allTextContents();
      assert.ok(
        texts.some((t) => t.trim().length > 0),
        'the pretrained model generates',
      );
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });
});
