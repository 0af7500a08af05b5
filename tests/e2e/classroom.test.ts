/**
 * The classroom shell: shareable setups through the URL, presenter mode, keyboard help,
 * accessibility (axe-core) on every stage, and offline after the first load.
 */
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { preview } from 'vite';
import { OUT_DIR, openApp, waitForBackend } from './harness';

const MODEL_TIMEOUT = 120_000;
const SHOTS = process.env.E2E_SHOTS_DIR ?? join(tmpdir(), 'rlhf-playground-e2e');
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

async function value(page: Page, key: string): Promise<string> {
  return page.inputValue(`[data-testid="cfg-${key}"]`);
}

async function setNumber(page: Page, testId: string, v: number): Promise<void> {
  const input = page.locator(`[data-testid="${testId}"]`);
  await input.fill(String(v));
  await input.dispatchEvent('change');
}

/** Copy link, then read it back from the clipboard (or from the fallback field). */
async function copyLink(page: Page): Promise<string> {
  await page.click('[data-testid="copy-link"]');
  await page.waitForFunction(
    () =>
      document.querySelector('[data-testid="copy-status"]')?.textContent === 'Link copied' ||
      document.querySelector('[data-testid="share-url"]'),
  );
  if (await page.locator('[data-testid="share-url"]').count()) return page.inputValue('[data-testid="share-url"]');
  return page.evaluate(() => navigator.clipboard.readText());
}

/** Serious and critical axe-core violations on the page as it is now. */
async function axeViolations(page: Page): Promise<string[]> {
  // The app's CSP forbids injected script tags; evaluating the source through the protocol is not one.
  if (!(await page.evaluate(() => 'axe' in globalThis))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const axe = (
      globalThis as unknown as {
        axe: {
          run(
            ctx: Document,
            opts: object,
          ): Promise<{
            violations: { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] }[];
          }>;
        };
      }
    ).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.slice(0, 4).map((n) => JSON.stringify(n.target)),
    }));
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id} (${v.help}): ${v.targets.join(' ')}`);
}

describe('classroom shell', () => {
  it('a copied link reopens the same setup and seed in a fresh browser', async () => {
    const a = await openApp('/?klCoef=0.125&seed=42&batchSize=8&prompts=stories#/train', {
      context: { permissions: ['clipboard-read', 'clipboard-write'] },
    });
    let link: string;
    try {
      const { page } = a;
      await page.waitForSelector('[data-testid="stage-train"]');
      assert.equal(await value(page, 'klCoef'), '0.125');
      assert.equal(await value(page, 'seed'), '42');
      assert.equal(await value(page, 'batchSize'), '8');
      assert.equal(await page.inputValue('[data-testid="prompt-set"]'), 'stories');
      // A change made on the page goes into the link too.
      await setNumber(page, 'cfg-lr', 0.0002);
      link = await copyLink(page);
      assert.match(link, /[?&]klCoef=0\.125(&|#|$)/);
      assert.match(link, /[?&]seed=42(&|#|$)/);
      assert.match(link, /[?&]lr=0\.0002(&|#|$)/);
      assert.ok(link.endsWith('#/train'), link);
      assert.deepEqual(a.errors, []);
    } finally {
      await a.close();
    }
    const b = await openApp(link.slice(new URL(link).origin.length), {
      context: { permissions: ['clipboard-read', 'clipboard-write'] },
    });
    try {
      const { page } = b;
      await page.waitForSelector('[data-testid="stage-train"]');
      assert.equal(await value(page, 'klCoef'), '0.125');
      assert.equal(await value(page, 'seed'), '42');
      assert.equal(await value(page, 'batchSize'), '8');
      assert.equal(await value(page, 'lr'), '0.0002');
      assert.equal(await page.inputValue('[data-testid="prompt-set"]'), 'stories');
      assert.equal(await page.locator('[data-testid="notice"]').count(), 0);
      // The same setup gives the same link.
      assert.equal(await copyLink(page), link);
      // Clipboard refused: the link shows in a selected text field instead.
      await page.evaluate(() => {
        navigator.clipboard.writeText = () => Promise.reject(new DOMException('denied', 'NotAllowedError'));
      });
      await page.click('[data-testid="copy-link"]');
      await page.waitForSelector('[data-testid="share-url"]');
      assert.equal(await page.inputValue('[data-testid="share-url"]'), link);
      assert.equal(
        await page.evaluate(() => {
          const el = document.activeElement as HTMLInputElement;
          return el.dataset.testid === 'share-url' && el.selectionStart === 0 && el.selectionEnd === el.value.length;
        }),
        true,
      );
      assert.deepEqual(b.errors, []);
    } finally {
      await b.close();
    }
  });

  it('a hostile URL opens with notices and the defaults', async () => {
    const app = await openApp('/?seed=NaN&klCoef=-1&backend=%3Cscript%3Ealert(1)%3C/script%3E#/train');
    try {
      const { page } = app;
      await page.waitForSelector('[data-testid="stage-train"]');
      const notices = await page.locator('[data-testid="notice"]').allTextContents();
      assert.equal(notices.length, 3, notices.join('\n'));
      assert.ok(notices.some((n) => /seed="NaN" .*default 0/.test(n)));
      assert.ok(notices.some((n) => /klCoef="-1" .*default 0\.5/.test(n)));
      assert.ok(notices.some((n) => n.includes('Unknown backend "<script>alert(1)</script>"')));
      assert.equal(await value(page, 'seed'), '0');
      assert.equal(await value(page, 'klCoef'), '0.5');
      assert.equal(await waitForBackend(page), 'wasm');
      assert.equal(await page.locator('script:text("alert")').count(), 0);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('presenter mode at 1280×720: large type, advanced controls hidden, a chart full screen; hide= flags', async () => {
    const app = await openApp('/?presenter=1#/train', { context: { viewport: { width: 1280, height: 720 } } });
    try {
      const { page } = app;
      await page.waitForSelector('[data-testid="stage-train"]');
      assert.equal(await page.evaluate(() => document.documentElement.classList.contains('presenter')), true);
      assert.equal(await page.evaluate(() => getComputedStyle(document.body).fontSize), '20px');
      assert.equal(await page.getAttribute('[data-testid="presenter-toggle"]', 'aria-pressed'), 'true');
      // Basic hyper-parameters shown, advanced ones not.
      assert.equal(await page.locator('tr[data-key="klCoef"]').count(), 1);
      assert.equal(await page.locator('tr[data-key="gamma"]').count(), 0);
      assert.equal(await page.locator('tr[data-key="clipRangeValue"]').count(), 0);
      await page.waitForSelector('[data-testid="advanced-hidden"]');
      // Nothing wider than the projector.
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 1280));
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: join(SHOTS, 'presenter-train-1280x720.png') });

      // A chart full screen (Fullscreen API or the overlay), and back.
      const chart = page.locator('[data-metric="objective/kl"] figure');
      await chart.locator('[data-testid="chart-fullscreen"]').click();
      await page.waitForFunction(() => !!document.querySelector('[data-metric="objective/kl"] figure.full'));
      const box = await chart.boundingBox();
      assert.ok(box && box.width > 1000 && box.height > 500, JSON.stringify(box));
      await page.screenshot({ path: join(SHOTS, 'presenter-chart-full.png') });
      await chart.locator('[data-testid="chart-fullscreen"]').click();
      await page.waitForFunction(() => !document.querySelector('figure.full'));
      // The chart's text summary for screen readers.
      assert.match(
        (await page.locator('[data-metric="objective/kl"] [data-testid="chart-summary"]').textContent())!,
        /KL to reference: no data yet/,
      );

      // Presenter off: the advanced settings come back.
      await page.click('[data-testid="presenter-toggle"]');
      assert.equal(await page.locator('tr[data-key="gamma"]').count(), 1);
      assert.equal(await page.evaluate(() => document.documentElement.classList.contains('presenter')), false);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }

    const hidden = await openApp('/?hide=data,stages,ppo-advanced#/data');
    try {
      const { page } = hidden;
      await page.waitForSelector('[data-testid="stage-hidden"]');
      assert.equal(await page.locator('nav[aria-label="Stages"]').count(), 0);
      await page.click('[data-testid="show-stage"]');
      await page.waitForSelector('[data-testid="stage-data"]');
      await page.evaluate(() => (location.hash = '#/train'));
      await page.waitForSelector('[data-testid="stage-train"]');
      assert.equal(await page.locator('tr[data-key="gamma"]').count(), 0);
      assert.deepEqual(hidden.errors, []);
    } finally {
      await hidden.close();
    }
  });

  it('? opens the keyboard help: focus inside, Esc closes and gives focus back; not while typing', async () => {
    const app = await openApp('/#/train');
    try {
      const { page } = app;
      await page.waitForSelector('[data-testid="stage-train"]');
      // Typing "?" into a field types it.
      await page.focus('[data-testid="eval-every"]');
      await page.keyboard.press('?');
      assert.equal(await page.locator('[data-testid="keyboard-help"][open]').count(), 0);

      await page.focus('[data-testid="presenter-toggle"]');
      await page.keyboard.press('?');
      await page.waitForSelector('[data-testid="keyboard-help"][open]');
      assert.match((await page.textContent('[data-testid="keyboard-help"]'))!, /both bad/);
      for (let i = 0; i < 4; i++) {
        assert.ok(
          await page.evaluate(() => !!document.activeElement?.closest('[data-testid="keyboard-help"]')),
          `focus left the dialog after ${i} Tab presses`,
        );
        await page.keyboard.press('Tab');
      }
      await page.keyboard.press('Escape');
      await page.waitForSelector('[data-testid="keyboard-help"]:not([open])', { state: 'attached' });
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'presenter-toggle');
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('training is operable by keyboard: Tab to Start, Enter starts, Pause by keyboard', async () => {
    const app = await openApp('/?batchSize=2&miniBatches=1&maxNewTokens=4&ppoEpochs=1#/train');
    try {
      const { page } = app;
      await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      // Reach Start with Tab alone, from the top of the page.
      await page.focus('[data-testid="presenter-toggle"]');
      let reached = false;
      for (let i = 0; i < 80 && !reached; i++) {
        await page.keyboard.press('Tab');
        reached = await page.evaluate(() => document.activeElement?.getAttribute('data-testid') === 'ppo-start');
      }
      assert.ok(reached, 'Tab reaches the Start button');
      await page.keyboard.press('Enter');
      await page.waitForSelector('[data-testid="ppo-pause"]', { timeout: MODEL_TIMEOUT });
      await page.focus('[data-testid="ppo-pause"]');
      await page.keyboard.press('Space');
      await page.waitForSelector('[data-testid="ppo-resume"]', { timeout: 180_000 });
      assert.ok(Number(await page.textContent('[data-testid="ppo-iteration"]')) >= 1);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('axe-core finds no serious or critical violations on any stage (and in presenter mode)', async () => {
    const app = await openApp('/#/model');
    try {
      const { page } = app;
      await page.waitForSelector('[data-testid="model-card"]', { timeout: MODEL_TIMEOUT });
      const stages = await page.$$eval('nav[aria-label="Stages"] a', (as) =>
        as.map((a) => a.getAttribute('href')!.slice(2)),
      );
      assert.ok(stages.length >= 6, stages.join());
      const found: string[] = [];
      for (const presenter of [false, true]) {
        if (presenter) await page.click('[data-testid="presenter-toggle"]');
        for (const id of stages) {
          await page.evaluate((s) => (location.hash = `#/${s}`), id);
          await page
            .waitForSelector(`[data-testid="stage-${id}"]`, { timeout: 15_000 })
            .catch(() => undefined /* a stage without that test id: axe looks at whatever it shows */);
          await page.waitForTimeout(500);
          for (const v of await axeViolations(page)) found.push(`${presenter ? 'presenter ' : ''}#/${id}: ${v}`);
        }
      }
      // The keyboard help, open.
      await page.keyboard.press('?');
      await page.waitForSelector('[data-testid="keyboard-help"][open]');
      for (const v of await axeViolations(page)) found.push(`keyboard help: ${v}`);
      assert.deepEqual(found, []);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('offline after the first load: a reload with the server gone opens the app and loads the model', async () => {
    // Our own server, so it can be stopped; no request routing, which would bypass the service worker.
    const server = await preview({
      logLevel: 'warn',
      build: { outDir: OUT_DIR },
      preview: { host: '127.0.0.1', port: 0, strictPort: false, open: false },
    });
    const origin = new URL(server.resolvedUrls!.local[0]).origin;
    const app = await openApp('/#/model', { route: false, origin });
    let serverOpen = true;
    try {
      const { page, context } = app;
      await page.waitForSelector('[data-testid="model-card"]', { timeout: MODEL_TIMEOUT });
      // The service worker installed (everything precached) and controls the page.
      await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
      await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: 30_000 });
      const cached = await page.evaluate(async () => {
        const keys = await caches.keys();
        const c = await caches.open(keys.find((k) => k.startsWith('rlhf-playground-'))!);
        return (await c.keys()).map((r) => new URL(r.url).pathname);
      });
      for (const f of ['/index.html', '/models/tiny-gpt/model.safetensors', '/tfjs-wasm/tfjs-backend-wasm-simd.wasm'])
        assert.ok(cached.includes(f), `${f} is precached (${cached.length} files)`);

      await server.close();
      serverOpen = false;
      await context.setOffline(true);
      await page.reload();
      await page.waitForSelector('[data-testid="stage-model"]');
      assert.equal(await waitForBackend(page), 'wasm');
      await page.waitForSelector('[data-testid="model-card"]', { timeout: MODEL_TIMEOUT });
      assert.match((await page.textContent('[data-testid="model-card"] h2'))!, /tiny-gpt/);
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
      if (serverOpen) await server.close();
    }
  });
});
