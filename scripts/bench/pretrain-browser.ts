/**
 * The Pretrain stage's done-when measurement in Chromium (issue 17): open the built app, add a text
 * file on the Pretrain page, start the default preset from scratch (or continue the bundled model
 * with `--continue`), and log every few seconds the step, the validation loss and the two counting
 * baselines, noting when the model crosses the unigram and the bigram line. After `--minutes` (or
 * the last step) it pauses and prints the final bits per byte and the samples.
 *
 *   E2E_OUT_DIR=dist-bench npx tsx scripts/bench/pretrain-browser.ts --file /tmp/text.txt [--minutes 10] [--continue]
 *
 * A measurement, not a test: it prints what it sees and asserts nothing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { openApp, ensureBuilt, closeShared } from '../../tests/e2e/harness';

const args = process.argv.slice(2);
const arg = (name: string, def?: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const file = arg('file');
if (!file || !existsSync(file)) throw new Error('Give a text file: --file PATH');
const minutes = Number(arg('minutes', '10'));
const cont = args.includes('--continue');

ensureBuilt();
const app = await openApp('/#/pretrain');
const { page } = app;
const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
try {
  log(`backend ${(await page.textContent('[data-testid="backend-name"]'))?.trim()}`);
  await page.setInputFiles('[data-testid="pretrain-files"]', file);
  await page.waitForSelector('[data-testid="pretrain-stats"]');
  log(`text: ${await page.textContent('[data-testid="pretrain-stats"]')}`);
  if (cont) await page.check('[data-testid="pretrain-continue"]');
  await page.waitForSelector('[data-testid="pretrain-start"]:not([disabled])', { timeout: 120_000 });
  const t0 = Date.now();
  await page.click('[data-testid="pretrain-start"]');
  await page.waitForSelector('[data-testid="pretrain-chart"]', { timeout: 300_000 });
  log(`prepared in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const tTrain = Date.now();
  let crossedUni: number | null = null;
  let crossedBi: number | null = null;
  let lastLog = 0;
  let lastValPoints = -1;
  for (;;) {
    const s = await page.evaluate(() => {
      const c = document.querySelector('[data-testid="pretrain-chart"]')!;
      const r = document.querySelector('[data-testid="pretrain-run"]')!;
      return {
        step: Number(c.getAttribute('data-train-points')),
        points: Number(c.getAttribute('data-train-points')),
        val: Number(c.getAttribute('data-last-val') || NaN),
        valPoints: Number(c.getAttribute('data-val-points')),
        uni: Number(c.getAttribute('data-unigram')),
        bi: Number(c.getAttribute('data-bigram')),
        running: !!document.querySelector('[data-testid="pretrain-pause"]'),
        progress: document.querySelector('[data-testid="pretrain-progress"]')?.textContent ?? '',
      };
    });
    const secs = (Date.now() - tTrain) / 1000;
    if (s.valPoints !== lastValPoints && Number.isFinite(s.val)) {
      lastValPoints = s.valPoints;
      log(`${secs.toFixed(0)} s: step ${s.step}, validation ${s.val.toFixed(3)} nats/token`);
    }
    if (crossedUni === null && s.val < s.uni) {
      crossedUni = secs;
      log(`crossed the unigram line (${s.uni.toFixed(3)}) at ${secs.toFixed(0)} s, step ≈${s.points}`);
    }
    if (crossedBi === null && s.val < s.bi) {
      crossedBi = secs;
      log(`crossed the bigram line (${s.bi.toFixed(3)}) at ${secs.toFixed(0)} s, step ≈${s.points}`);
    }
    if (Date.now() - lastLog > 30_000) {
      lastLog = Date.now();
      log(`uptime: ${execFileSync('uptime').toString().trim()}`);
      log(`${secs.toFixed(0)} s: ${s.progress.replace(/\s+/g, ' ').trim()} · val ${s.val.toFixed(3)}`);
    }
    if (!s.running && s.points > 0) break;
    if (secs > minutes * 60) {
      await page.click('[data-testid="pretrain-pause"]');
      await page.waitForSelector('[data-testid="pretrain-resume"], [data-testid="pretrain-adopt"]:not([disabled])', {
        timeout: 120_000,
      });
      break;
    }
    await page.waitForTimeout(2000);
  }
  const secs = (Date.now() - tTrain) / 1000;
  log(`stopped after ${secs.toFixed(0)} s of training`);
  log(`progress: ${(await page.textContent('[data-testid="pretrain-progress"]'))?.replace(/\s+/g, ' ').trim()}`);
  log(`validation: ${(await page.textContent('[data-testid="pretrain-val"]'))?.trim()}`);
  log(`unigram: ${(await page.textContent('[data-testid="pretrain-unigram"]'))?.trim()}`);
  log(`bigram: ${(await page.textContent('[data-testid="pretrain-bigram"]'))?.trim()}`);
  log(`crossed unigram at ${crossedUni?.toFixed(0) ?? 'never'} s, bigram at ${crossedBi?.toFixed(0) ?? 'never'} s`);
  const first = await page.getAttribute('[data-testid="pretrain-chart"]', 'data-first-val');
  log(`first validation loss ${first}`);
  const samples = await page.locator('[data-testid="pretrain-samples"] li').allTextContents();
  log(`samples at step ${await page.getAttribute('[data-testid="pretrain-samples"]', 'data-step')}:`);
  for (const t of samples) console.log(`  ${JSON.stringify(t)}`);
  if (app.errors.length) log(`page errors: ${app.errors.join(' | ')}`);
} finally {
  await app.close();
  await closeShared();
}
