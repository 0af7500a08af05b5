import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { openApp } from './harness';

const MODEL_DIR = 'public/models/tiny-gpt';

describe('model page', () => {
  it('loads the bundled model, generates streamed samples, and shows the token view', async () => {
    const app = await openApp('/#/model');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="model-card"]', { timeout: 60_000 });
      const params = Number((await page.textContent('[data-testid="model-params"]'))!.replace(/,/g, ''));
      assert.ok(params > 100_000, `parameter count ${params}`);

      await page.fill('[data-testid="prompt"]', 'The movie was ');
      await page.selectOption('[data-testid="num-samples"]', '2');
      await page.click('[data-testid="generate"]');
      await page.waitForSelector('[data-testid="speed"]', { timeout: 60_000 });
      const samples = await page.locator('[data-testid="sample"]').allTextContents();
      assert.equal(samples.length, 2);
      for (const s of samples) assert.ok(s.startsWith('The movie was'), s);
      const texts = await page.locator('[data-testid="sample-text"]').allTextContents();
      assert.ok(
        texts.some((t) => t.trim().length > 0),
        'samples should have new text',
      );

      await page.locator('[data-testid="show-tokens"]').first().click();
      await page.waitForSelector('[data-testid="token-view"]');
      await page.locator('[data-testid="token-view"] .tok').nth(1).hover();
      const detail = await page.textContent('[data-testid="token-detail"]');
      assert.match(detail!, /id \d+/);
      assert.match(detail!, /Top 5/);

      // Same seed, same samples.
      await page.click('[data-testid="generate"]');
      await page.waitForFunction(() => !document.querySelector('[data-testid="cancel"]'));
      await page.waitForSelector('[data-testid="speed"]');
      assert.deepEqual(await page.locator('[data-testid="sample-text"]').allTextContents(), texts);
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });

  it('rejects bad model files with a message and keeps the loaded model', async () => {
    const app = await openApp('/#/model');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="model-card"]', { timeout: 60_000 });
      const config = readFileSync(`${MODEL_DIR}/config.json`);
      const tokenizer = readFileSync(`${MODEL_DIR}/tokenizer.json`);
      const weights = readFileSync(`${MODEL_DIR}/model.safetensors`);
      const truncated = weights.subarray(0, weights.length - 1000);
      await page.setInputFiles('[data-testid="model-files"]', [
        { name: 'config.json', mimeType: 'application/json', buffer: config },
        { name: 'tokenizer.json', mimeType: 'application/json', buffer: tokenizer },
        { name: 'model.safetensors', mimeType: 'application/octet-stream', buffer: truncated },
      ]);
      await page.waitForSelector('[data-testid="notice"]:has-text("was not loaded")');
      assert.match((await page.textContent('[data-testid="model-card"] h2'))!, /tiny-gpt/);

      await page.setInputFiles('[data-testid="model-files"]', [
        { name: 'config.json', mimeType: 'application/json', buffer: Buffer.from('{not json') },
        { name: 'tokenizer.json', mimeType: 'application/json', buffer: tokenizer },
        { name: 'model.safetensors', mimeType: 'application/octet-stream', buffer: weights },
      ]);
      await page.waitForSelector('[data-testid="notice"]:has-text("config.json is not valid JSON")');

      // The bundled model still generates.
      await page.click('[data-testid="generate"]');
      await page.waitForSelector('[data-testid="speed"]', { timeout: 60_000 });

      // Good files load under their own name.
      await page.setInputFiles('[data-testid="model-files"]', [
        { name: 'config.json', mimeType: 'application/json', buffer: config },
        { name: 'tokenizer.json', mimeType: 'application/json', buffer: tokenizer },
        { name: 'my-model.safetensors', mimeType: 'application/octet-stream', buffer: weights },
      ]);
      await page.waitForSelector('[data-testid="model-card"] h2:has-text("my-model")');
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });
});
