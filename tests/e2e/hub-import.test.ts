/**
 * #19: a Hugging Face style model folder (sharded BF16 safetensors + index, vocab.json + merges.txt,
 * with the extra files a Hub folder has) loads through the folder picker: its plan is shown, the
 * model samples; bad folders (a missing shard, .bin weights only, a model too large) are refused
 * with a message and the loaded model stays. Fixture: scripts/golden/hub_gpt2_tiny.py.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openApp, type AppPage } from './harness';

const FIXTURE = 'tests/fixtures/hub/gpt2-tiny';
const tmp = mkdtempSync(join(tmpdir(), 'hub-import-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the fixture folder under `name`, with files removed or replaced. */
function folder(name: string, change: Record<string, string | null> = {}): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  for (const f of readdirSync(FIXTURE)) if (!(f in change)) copyFileSync(join(FIXTURE, f), join(dir, f));
  for (const [f, text] of Object.entries(change)) if (text !== null) writeFileSync(join(dir, f), text);
  return dir;
}

async function errorNotices(app: AppPage): Promise<string[]> {
  return (await app.page.locator('[data-testid="notice"]').allTextContents()).filter((t) =>
    t.includes('was not loaded'),
  );
}

async function generates(app: AppPage): Promise<string[]> {
  const { page } = app;
  await page.waitForSelector('[data-testid="generate"]:not([disabled])', { timeout: 30_000 });
  await page.click('[data-testid="generate"]');
  await page.waitForFunction(() => !document.querySelector('[data-testid="cancel"]'), undefined, { timeout: 60_000 });
  await page.waitForSelector('[data-testid="speed"]', { timeout: 60_000 });
  const texts = await page.locator('[data-testid="sample-text"]').allTextContents();
  assert.ok(texts.length > 0 && texts.some((t) => t.length > 0), 'samples should have new text');
  return texts;
}

describe('importing a Hub model folder', () => {
  it('loads a sharded BF16 GPT-2 folder through the folder picker, shows its plan, samples; bad folders are refused and the model stays', async () => {
    const config = JSON.parse(readFileSync(join(FIXTURE, 'config.json'), 'utf8')) as Record<string, unknown>;
    const good = folder('gpt2-tiny');
    const missingShard = folder('missing-shard', { 'model-00002-of-00002.safetensors': null });
    const binOnly = folder('bin-only', {
      'model-00001-of-00002.safetensors': null,
      'model-00002-of-00002.safetensors': null,
      'model.safetensors.index.json': null,
      'pytorch_model.bin': 'not a real pickle',
    });
    const tooLarge = folder('too-large', {
      'config.json': JSON.stringify({ ...config, n_layer: 200, n_embd: 4096, n_head: 32 }),
    });
    const app = await openApp('/#/model');
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="model-card"]', { timeout: 60_000 });
      await page.setInputFiles('[data-testid="model-folder"]', good);
      await page.waitForSelector('[data-testid="model-card"] h2:has-text("gpt2-tiny")', { timeout: 60_000 });
      // The plan: parameters, files read and ignored, memory per use and backend.
      const plan = page.locator('[data-testid="model-plan"]');
      assert.match((await plan.locator('h2').textContent())!, /Plan for gpt2-tiny/);
      const params = Number((await page.textContent('[data-testid="plan-params"]'))!.replace(/,/g, ''));
      assert.equal(params, Number((await page.textContent('[data-testid="model-params"]'))!.replace(/,/g, '')));
      assert.equal(params, 270 * 16 + 64 * 16 + 2 * (12 * 16 * 16 + 13 * 16) + 2 * 16);
      const files = (await page.textContent('[data-testid="plan-files"]'))!;
      for (const f of [
        'config.json',
        'model.safetensors.index.json',
        'model-00001-of-00002.safetensors',
        'vocab.json',
        'merges.txt',
      ])
        assert.ok(files.includes(f), files);
      assert.match(
        (await page.textContent('[data-testid="plan-ignored"]'))!,
        /README\.md.*generation_config\.json|generation_config\.json.*README\.md/,
      );
      assert.match((await page.textContent('[data-testid="plan-use-ppo-full"]'))!, /fits/);
      await generates(app);

      // Bad folders: each refused with its message; gpt2-tiny stays and still samples.
      const cases: [string, RegExp][] = [
        [
          missingShard,
          /model\.safetensors\.index\.json puts .* in model-00002-of-00002\.safetensors, which was not picked/,
        ],
        [binOnly, /pytorch_model\.bin: only \.safetensors weights are read/],
        [
          tooLarge,
          /config\.json: "n_layer" is 200 and "n_embd" is 4,096; the model would have .* parameters and need .* GiB to load and sample, more than the \w+ backend can hold/,
        ],
      ];
      for (const [i, [dir, message]] of cases.entries()) {
        await page.setInputFiles('[data-testid="model-folder"]', dir);
        await page.waitForFunction(
          (n) =>
            [...document.querySelectorAll('[data-testid="notice"]')].filter((e) =>
              e.textContent!.includes('was not loaded'),
            ).length >= n,
          i + 1,
          { timeout: 30_000 },
        );
        const shown = (await errorNotices(app))[i];
        assert.match(shown, message);
        assert.match(shown, /The previous model is still loaded\./);
        assert.match((await page.textContent('[data-testid="model-card"] h2'))!, /gpt2-tiny/);
        await generates(app);
      }
      // The too-large model's plan is on the page with the refusal and what does not fit.
      assert.match((await page.textContent('[data-testid="plan-refusal"]'))!, /"n_layer" is 200/);
      assert.match((await page.textContent('[data-testid="plan-use-sample"]'))!, /too large/);

      // The same model picked as files (multi-file picker) loads too.
      await page.setInputFiles(
        '[data-testid="model-files"]',
        readdirSync(good).map((f) => join(good, f)),
      );
      await page.waitForFunction(
        () =>
          document.querySelector('[data-testid="model-plan"] h2')?.textContent?.includes('gpt2-tiny') &&
          !document.querySelector('[data-testid="plan-refusal"]') &&
          !document.body.textContent!.includes('Loading the model…'),
        undefined,
        { timeout: 60_000 },
      );
      assert.match((await page.textContent('[data-testid="model-card"] h2'))!, /gpt2-tiny/);
      await generates(app);
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });
});
