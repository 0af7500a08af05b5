import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { openApp, type AppPage } from './harness';
import type { Engine, EngineTestHooks } from '../../src/lib/engine/types';

const MODEL_DIR = 'public/models/tiny-gpt';

/** The bundled model's files, config.json changed by `change`, as the file input takes them. */
function modelFiles(weightsName: string, change: Record<string, unknown> = {}) {
  const config = { ...JSON.parse(readFileSync(`${MODEL_DIR}/config.json`, 'utf8')), ...change };
  return [
    { name: 'config.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(config)) },
    { name: 'tokenizer.json', mimeType: 'application/json', buffer: readFileSync(`${MODEL_DIR}/tokenizer.json`) },
    {
      name: weightsName,
      mimeType: 'application/octet-stream',
      buffer: readFileSync(`${MODEL_DIR}/model.safetensors`),
    },
  ];
}

type WithEngine = { rlhf: { engine: { engine: Engine; testHooks: EngineTestHooks } } };

/** The name of the model the engine holds (not what the page shows). */
async function engineModelName(app: AppPage): Promise<string | null> {
  return app.page.evaluate(async () => {
    const info = await (globalThis as unknown as WithEngine).rlhf.engine.engine.modelInfo();
    return info?.name ?? null;
  });
}

/** Generate on the Model page and wait for the samples; the loaded model works. */
async function generates(app: AppPage): Promise<void> {
  const { page } = app;
  await page.waitForSelector('[data-testid="generate"]:not([disabled])', { timeout: 30_000 });
  await page.click('[data-testid="generate"]');
  await page.waitForFunction(() => !document.querySelector('[data-testid="cancel"]'), undefined, {
    timeout: 60_000,
  });
  await page.waitForSelector('[data-testid="speed"]', { timeout: 60_000 });
  const texts = await page.locator('[data-testid="sample-text"]').allTextContents();
  assert.ok(texts.length > 0 && texts.some((t) => t.trim().length > 0), 'samples should have new text');
}

/** Texts of the error notices shown now. */
async function errorNotices(app: AppPage): Promise<string[]> {
  return (await app.page.locator('[data-testid="notice"]').allTextContents()).filter((t) =>
    t.includes('was not loaded'),
  );
}

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

  it('refuses configs the backend cannot hold, naming config.json and the field, and the model still generates', async () => {
    const app = await openApp('/#/model');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="model-card"]', { timeout: 60_000 });
      const cases: [Record<string, unknown>, string][] = [
        [{ n_layer: 10000 }, 'config.json: "n_layer" is 10,000; this app handles models of at most 256 blocks.'],
        [
          { n_positions: 1e9 },
          'config.json: "n_positions" is 1,000,000,000; this app handles models of at most 4,096 positions.',
        ],
        [{ n_embd: 1e6 }, 'config.json: "n_embd" is 1,000,000; this app handles models of at most 8,192 as the width.'],
        [
          { n_layer: 200 },
          'broken.safetensors has no tensor "transformer.h.4.ln_1.weight", "transformer.h.4.ln_1.bias", "transformer.h.4.attn.c_attn.weight" and 2,349 more, which config.json needs (config.json says "n_layer" is 200). Pick the config.json of these weights.',
        ],
      ];
      for (const [i, [change, message]] of cases.entries()) {
        await page.setInputFiles('[data-testid="model-files"]', modelFiles('broken.safetensors', change));
        await page.waitForFunction(
          (n) =>
            [...document.querySelectorAll('[data-testid="notice"]')].filter((e) =>
              e.textContent!.includes('was not loaded'),
            ).length >= n,
          i + 1,
          { timeout: 30_000 },
        );
        const shown = await errorNotices(app);
        assert.equal(shown.length, i + 1, shown.join('\n'));
        assert.ok(
          shown[i].includes(`The model was not loaded: ${message} The previous model is still loaded.`),
          shown[i],
        );
        assert.doesNotMatch(shown[i], /\.\.|Invalid typed array|out of bounds/);
        await generates(app); // the previous model still works
      }
      assert.match((await page.textContent('[data-testid="model-card"] h2'))!, /tiny-gpt/);
      assert.equal(
        (await page.textContent('[data-testid="model-memory"]'))!.replace(/\s+/g, ' ').trim(),
        "3.7 MiB in use; training adds 11.0 MiB, each sample's cache 256 KiB",
      );
      assert.equal(await engineModelName(app), 'tiny-gpt');
      await generates(app);
      assert.equal(await page.locator('text=No model loaded').count(), 0);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('two picks in a row, the second broken: the page shows the model the engine holds, and it generates', async () => {
    const app = await openApp('/#/model');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="model-card"]', { timeout: 60_000 });
      await page.setInputFiles('[data-testid="model-files"]', modelFiles('first.safetensors'));
      await page.setInputFiles('[data-testid="model-files"]', modelFiles('broken.safetensors', { n_embd: 1e6 }));
      await page.waitForSelector('[data-testid="notice"]:has-text("was not loaded")', { timeout: 30_000 });
      await page.waitForFunction(() => !document.body.textContent!.includes('Loading the model…'), undefined, {
        timeout: 30_000,
      });
      const shown = await errorNotices(app);
      assert.equal(shown.length, 1, shown.join('\n'));
      assert.match(
        shown[0],
        /The model was not loaded: config\.json: "n_embd" is 1,000,000; this app handles models of at most 8,192 as the width\. (The previous model is still loaded\.|The loaded model is first\.)/,
      );
      // Whichever pick the engine ended on, the card names it and Generate works with it.
      const held = await engineModelName(app);
      assert.ok(held === 'first' || held === 'tiny-gpt', String(held));
      assert.equal((await page.textContent('[data-testid="model-card"] h2'))!.split(' (')[0].trim(), held);
      assert.equal(await page.locator('text=No model loaded').count(), 0);
      await generates(app);
      // A good pick after that loads as usual.
      await page.setInputFiles('[data-testid="model-files"]', modelFiles('second.safetensors'));
      await page.waitForSelector('[data-testid="model-card"] h2:has-text("second")', { timeout: 30_000 });
      assert.equal(await engineModelName(app), 'second');
      await generates(app);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('a backend trap during a load (simulated) restarts the backend and restores the previous model', async () => {
    const app = await openApp('/#/model');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="model-card"]', { timeout: 60_000 });
      const backend = (await page.textContent('[data-testid="backend-name"]'))!.trim();
      const armed = await page.evaluate(() =>
        (globalThis as unknown as WithEngine).rlhf.engine.testHooks.debugTrapNextLoad(),
      );
      assert.equal(armed, true);
      await page.setInputFiles('[data-testid="model-files"]', modelFiles('other.safetensors'));
      await page.waitForSelector('[data-testid="notice"]:has-text("was not loaded")', { timeout: 60_000 });
      const [shown] = await errorNotices(app);
      assert.ok(
        shown.includes(
          `The model was not loaded: The ${backend} backend failed while building the model (memory access out of bounds (simulated by debugTrapNextLoad)); it was restarted and the previous model tiny-gpt was restored from its files. The previous model is still loaded.`,
        ),
        shown,
      );
      assert.equal(await engineModelName(app), 'tiny-gpt');
      assert.match((await page.textContent('[data-testid="model-card"] h2'))!, /tiny-gpt/);
      await generates(app);
      // The restarted backend loads the next pick as usual.
      await page.setInputFiles('[data-testid="model-files"]', modelFiles('other.safetensors'));
      await page.waitForSelector('[data-testid="model-card"] h2:has-text("other")', { timeout: 30_000 });
      await generates(app);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
});
