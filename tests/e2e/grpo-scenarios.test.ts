import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { openApp } from './harness';

const MODEL_TIMEOUT = 120_000;
const RUN_TIMEOUT = 400_000;

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

const picked = (page: Page, id: string) =>
  page.getAttribute(`[data-testid="group-scenario-card"][data-id="${id}"] h3 button`, 'aria-pressed');

async function run(page: Page, id: string): Promise<void> {
  const card = `[data-testid="group-scenario-card"][data-id="${id}"]`;
  await page.click(`${card} h3 button`);
  await page.waitForSelector(`${card} [data-testid="group-scenario-run"]:enabled`, { timeout: MODEL_TIMEOUT });
  await page.click(`${card} [data-testid="group-scenario-run"]`);
  await page.waitForSelector('[data-testid="group-scenario-done"], [data-testid="group-stage"][data-status="failed"]', {
    timeout: RUN_TIMEOUT,
  });
  const failed = page.locator('[data-testid="group-stage"][data-status="failed"]');
  if ((await failed.count()) > 0) assert.fail(`stage failed: ${await failed.first().textContent()}`);
}

describe('GRPO scenarios on the start page', () => {
  it('a verifiable-reward scenario runs base → GRPO → held-out pass rate and shows both pass rates', async () => {
    const app = await openApp('/?quick=1');
    const { page } = app;
    try {
      // Listed apart from the RLHF scenarios (whose count stays).
      assert.equal(await page.locator('[data-testid="scenario-card"]').count(), 7);
      assert.ok((await page.locator('[data-testid="group-scenario-card"][data-kind="verifiable"]').count()) >= 2);
      await run(page, 'exact-words');
      const stages = await page.$$eval('[data-testid="group-stage"]', (els) =>
        els.map((e) => [e.getAttribute('data-stage'), e.getAttribute('data-status')]),
      );
      assert.deepEqual(stages, [
        ['base', 'done'],
        ['grpo', 'done'],
        ['final', 'done'],
      ]);
      const line = page.locator('[data-testid="pass-rate-line"]');
      assert.equal(await line.getAttribute('data-done'), 'true');
      const base = Number(await line.getAttribute('data-base'));
      const final = Number(await line.getAttribute('data-final'));
      for (const x of [base, final]) assert.ok(x >= 0 && x <= 1, `pass rate ${x}`);
      assert.match((await line.textContent())!, /base\s+\d+ %\s+→ after GRPO\s+\d+ %/);
      // One sample per held-out prompt, before and after, each marked pass or fail.
      assert.ok((await page.locator('[data-testid="pass-sample"]').count()) > 0);
      // The run is the Train page's: 2 quick iterations with the reward function's own curve.
      await page.click('[data-testid="group-scenario-inspect"]');
      await page.click('[data-testid="method-grpo"]');
      await page.waitForSelector('[data-metric="rewards/five_words/mean"] [data-testid="chart-value"]:not(:empty)');
      assert.equal(await page.textContent('[data-testid="group-iteration"]'), '2');
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('one sentence: the reward worker is told which completions the length limit cut off, and the verdicts follow', async () => {
    const app = await openApp('/?quick=1');
    const { page } = app;
    try {
      await run(page, 'one-sentence');
      const cells = await page.$$eval('[data-testid="pass-cell"]', (els) =>
        els.map((e) => ({
          text: e.querySelector('[data-testid="pass-text"]')!.textContent!,
          pass: e.getAttribute('data-pass') === 'true',
          finished: e.getAttribute('data-finished'),
          cutMark: e.querySelector('.cut') !== null,
        })),
      );
      // Base and after GRPO for each of the 8 held-out prompts (one sample each in quick mode).
      assert.equal(cells.length, 16);
      // Quick mode stops at 8 new tokens, shorter than most of the bundled model's reviews.
      assert.ok(
        cells.some((c) => c.finished === 'false'),
        'no completion was cut off',
      );
      for (const c of cells) {
        assert.ok(c.finished === 'true' || c.finished === 'false', `finished flag ${c.finished}`);
        assert.equal(c.cutMark, c.finished === 'false');
        const t = c.text.trim();
        const oneSentence = (t.match(/[.!?]+/g) ?? []).length === 1 && /[.!?]$/.test(t);
        assert.equal(c.pass, c.finished === 'true' && oneSentence, JSON.stringify(c));
      }
      await page.click('[data-testid="group-scenario-inspect"]');
      await page.click('[data-testid="method-grpo"]');
      await page.waitForSelector('[data-metric="rewards/one_sentence/mean"] [data-testid="chart-value"]:not(:empty)');
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('the length-bias lab overlays completion length for grpo, dapo and dr_grpo in one chart', async () => {
    const app = await openApp('/?quick=1');
    const { page } = app;
    try {
      await run(page, 'length-bias-lab');
      const chart = page.locator('[data-testid="length-lab-chart"] [data-testid="overlay-chart"]');
      assert.equal(await chart.getAttribute('data-series'), '3');
      const points = await page.$$eval('[data-testid="length-lab-chart"] [data-testid="overlay-series"]', (els) =>
        els.map((e) => Number(e.getAttribute('data-points'))),
      );
      assert.deepEqual(points, [3, 3, 3]);
      const legend = await page.locator('[data-testid="length-lab-chart"] .legend li').allTextContents();
      assert.deepEqual(
        legend.map((t) => t.trim()),
        ['grpo', 'dapo', 'dr_grpo'],
      );
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('a link with scenario=<GRPO id> opens that scenario; Copy link writes the GRPO scenario picked', async () => {
    const app = await openApp('/?quick=1&scenario=length-bias-lab', {
      context: { permissions: ['clipboard-read', 'clipboard-write'] },
    });
    const { page } = app;
    try {
      const card = '[data-testid="group-scenario-card"][data-id="length-bias-lab"]';
      await page.waitForSelector(`${card} [data-testid="group-scenario-run"]`);
      assert.equal(await picked(page, 'length-bias-lab'), 'true');
      assert.equal(await picked(page, 'exact-words'), 'false');
      const lab = new URL(await copyLink(page));
      assert.equal(lab.searchParams.get('scenario'), 'length-bias-lab');
      assert.equal(lab.searchParams.get('quick'), 'true');

      // Another GRPO card picked: the link follows it.
      await page.click('[data-testid="group-scenario-card"][data-id="exact-words"] h3 button');
      assert.equal(await picked(page, 'exact-words'), 'true');
      const words = new URL(await copyLink(page));
      assert.equal(words.searchParams.get('scenario'), 'exact-words');

      // An RLHF scenario picked instead: its id, and no GRPO card is open.
      const ppoCard = page.locator('[data-testid="scenario-card"]').first();
      const ppoId = (await ppoCard.getAttribute('data-id'))!;
      await ppoCard.locator('h3 button').click();
      assert.equal(new URL(await copyLink(page)).searchParams.get('scenario'), ppoId);
      assert.equal(
        await page.locator('[data-testid="group-scenario-card"] [data-testid="group-scenario-run"]').count(),
        0,
      );

      // The GRPO link opened afresh opens its scenario, ready to run.
      await page.goto(words.href);
      const run = '[data-testid="group-scenario-card"][data-id="exact-words"] [data-testid="group-scenario-run"]';
      await page.waitForSelector(`${run}:enabled`, { timeout: MODEL_TIMEOUT });
      assert.equal(await picked(page, 'exact-words'), 'true');
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
});
