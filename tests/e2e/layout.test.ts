/**
 * Layout on phones and wide screens: labelling by tapping on a 390 × 844 phone without scrolling
 * (the two texts and the choices on one screen, in pairwise, ranking and rating modes), the
 * compact phone header, and no page wider than the window at 360, 390, 768, 1280 and 1920 px.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { openApp } from './harness';

const MODEL_TIMEOUT = 120_000;
const PHONE = { width: 390, height: 844 };
/** The stage ids of src/state/router.svelte.ts `STAGES` (a rune module, not importable in Node). */
const STAGE_IDS = ['start', 'pretrain', 'model', 'feedback', 'reward', 'train', 'runs', 'data'];

/** The element's box in viewport coordinates (throws if it is not rendered). */
async function box(
  page: Page,
  selector: string,
): Promise<{ top: number; bottom: number; left: number; right: number; height: number }> {
  const b = await page.evaluate((sel) => {
    const el = document.querySelector(sel);
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return { top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height };
  }, selector);
  assert.ok(b, `${selector} is on the page`);
  return b;
}

/** The element lies wholly inside the viewport. */
async function assertOnScreen(page: Page, selector: string): Promise<void> {
  const b = await box(page, selector);
  const vp = page.viewportSize()!;
  assert.ok(
    b.top >= 0 && b.bottom <= vp.height && b.left >= 0 && b.right <= vp.width,
    `${selector} inside the ${vp.width} × ${vp.height} viewport (box ${JSON.stringify(b)})`,
  );
}

async function labelled(page: Page): Promise<number> {
  return Number(await page.textContent('[data-testid="labelled-count"]'));
}

async function waitLabelled(page: Page, n: number): Promise<void> {
  await page.waitForFunction(
    (want) => document.querySelector('[data-testid="labelled-count"]')?.textContent === String(want),
    n,
    { timeout: MODEL_TIMEOUT },
  );
}

const scrollY = (page: Page) => page.evaluate(() => window.scrollY);

describe('phone layout', () => {
  it('labels ten pairs by tapping at 390 × 844 without scrolling; ranking and rating fit too', async () => {
    const app = await openApp('/#/feedback', {
      context: { viewport: PHONE, hasTouch: true, isMobile: true, deviceScaleFactor: 2 },
    });
    const { page } = app;
    try {
      // The compact header: a stage menu instead of the row of links, the backend as a dot and name.
      assert.equal(await page.locator('nav[aria-label="Stages"]').isVisible(), false);
      assert.equal(await page.locator('[data-testid="stage-menu"]').isVisible(), true);
      assert.equal(await page.locator('[data-testid="backend-select"]').isVisible(), false);
      const more = await box(page, '[data-testid="header-more"]');
      assert.ok(more.height >= 44, `backend button is ${more.height} px high`);
      assert.ok(more.bottom < 80, 'the header is one short row');

      const labels = ['A', 'B', 'A', 'tie', 'B', 'both-bad', 'A', 'B', 'A', 'B'];
      const seen = new Set<string>();
      for (let i = 0; i < labels.length; i++) {
        const item = (await page.getAttribute('[data-testid="pair"]', 'data-item', { timeout: MODEL_TIMEOUT }))!;
        assert.ok(!seen.has(item), 'a new pair for every tap');
        seen.add(item);
        assert.equal(await scrollY(page), 0, `no scroll before label ${i + 1}`);
        // Both texts and every choice on the one screen; the texts are not under the bar.
        for (const b of ['A', 'B', 'tie', 'both-bad', 'skip']) {
          await assertOnScreen(page, `[data-testid="vote-${b}"]`);
          const h = (await box(page, `[data-testid="vote-${b}"]`)).height;
          assert.ok(h >= 44, `vote-${b} is ${h} px high`);
        }
        const bar = await box(page, '[data-testid="pair"] .votes');
        for (const r of ['A', 'B']) {
          const t = await box(page, `[data-testid="response-${r}"]`);
          assert.ok(t.top >= 0 && t.bottom <= bar.top + 1, `text ${r} above the choices (${t.bottom} ≤ ${bar.top})`);
        }
        await page.tap(`[data-testid="vote-${labels[i]}"]`);
        await waitLabelled(page, i + 1);
      }
      assert.equal(await labelled(page), 10);
      assert.equal(await scrollY(page), 0, 'still no scroll after ten labels');

      // Swipe: text B dragged to the right is a vote for B; a drag mostly downwards is not a vote.
      const swipe = (testid: string, dx: number, dy: number) =>
        page.evaluate(
          ([id, dx, dy]) => {
            const el = document.querySelector(`[data-testid="${id}"]`)!;
            const r = el.getBoundingClientRect();
            const x = r.left + 20;
            const y = r.top + r.height / 2;
            // (No named helper in here: the test runner's transform would rename it.)
            const steps: [string, number, number][] = [['pointerdown', x, y]];
            for (let k = 1; k <= 5; k++) steps.push(['pointermove', x + (dx * k) / 5, y + (dy * k) / 5]);
            steps.push(['pointerup', x + dx, y + dy]);
            for (const [type, cx, cy] of steps)
              el.dispatchEvent(
                new PointerEvent(type, { pointerId: 7, pointerType: 'touch', clientX: cx, clientY: cy, bubbles: true }),
              );
          },
          [testid, dx, dy] as const,
        );
      assert.equal(await page.locator('.touch-hint').isVisible(), true, 'the swipe is explained on phones');
      const before = await page.getAttribute('[data-testid="pair"]', 'data-item');
      await swipe('response-B', 10, 120);
      await swipe('response-A', 40, 0);
      await page.waitForTimeout(300);
      assert.equal(await labelled(page), 10, 'a scroll or a short drag is no vote');
      assert.equal(await page.getAttribute('[data-testid="pair"]', 'data-item'), before);
      await swipe('response-B', 150, 10);
      await waitLabelled(page, 11);

      // Ranking: the texts' cards and the save button, tapped.
      await page.tap('[data-testid="mode-ranking"]');
      await page.waitForSelector('[data-testid="ranking"]', { timeout: MODEL_TIMEOUT });
      await assertOnScreen(page, '[data-testid="save-ranking"]');
      assert.ok((await box(page, '[data-testid="save-ranking"]')).height >= 44);
      assert.ok((await box(page, '[data-testid="rank-item"] .arrows button')).height >= 44);
      await page.tap('[data-testid="save-ranking"]');
      await waitLabelled(page, 12);

      // Rating: seven 44 px buttons in a row, and the save button on screen.
      await page.tap('[data-testid="mode-rating"]');
      await page.waitForSelector('[data-testid="rating"]', { timeout: MODEL_TIMEOUT });
      const one = await box(page, '[data-testid="rate-0-1"]');
      const seven = await box(page, '[data-testid="rate-0-7"]');
      assert.equal(Math.round(one.top), Math.round(seven.top), 'the 1–7 buttons share one row');
      assert.ok(seven.right - seven.left >= 44 && seven.height >= 44, 'rating buttons are 44 px targets');
      await assertOnScreen(page, '[data-testid="rate-0-5"]');
      await assertOnScreen(page, '[data-testid="save-rating"]');
      const rated = await page.locator('[data-testid="rate-item"]').count();
      for (let i = 0; i < rated; i++) await page.tap(`[data-testid="rate-${i}-5"]`);
      await page.tap('[data-testid="save-rating"]');
      await waitLabelled(page, 13);
      assert.equal(await scrollY(page), 0);

      // The stage menu moves between stages; the backend dot opens the tools and the backend switch.
      await page.selectOption('[data-testid="stage-menu"]', 'data');
      await page.waitForSelector('[data-testid="stage-data"]');
      // The labels as saved: the taps (A ×4, B ×4, tie, both bad) and the swipe (B).
      await page.waitForFunction(() => document.querySelector('[data-testid="count-label-B"]')?.textContent === '5');
      assert.equal(await page.textContent('[data-testid="count-label-A"]'), '4');
      assert.equal(await page.textContent('[data-testid="count-label-tie"]'), '1');
      await page.tap('[data-testid="header-more"]');
      assert.equal(await page.locator('[data-testid="backend-select"]').isVisible(), true);
      assert.equal(await page.locator('[data-testid="presenter-toggle"]').isVisible(), true);
      await page.keyboard.press('Escape');
      assert.equal(await page.locator('[data-testid="backend-select"]').isVisible(), false);

      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });

  it('no stage is wider than the window at 360, 390, 768, 1280 and 1920 px, with data in every page', async () => {
    const app = await openApp('/?quick=1#/start', { context: { viewport: { width: 1280, height: 800 } } });
    const { page } = app;
    try {
      // A quick scenario first, so the pages show what they show in use: labels, a reward model, a
      // PPO run with its charts and results, the model card.
      const card = '[data-testid="scenario-card"][data-id="over-optimisation"]';
      await page.click(`${card} h3 button`);
      await page.waitForSelector(`${card} [data-testid="scenario-run"]:enabled`, { timeout: MODEL_TIMEOUT });
      await page.click(`${card} [data-testid="scenario-run"]`);
      await page.waitForSelector('[data-testid="scenario-done"]', { timeout: 400_000 });
      const wide: string[] = [];
      for (const id of STAGE_IDS) {
        for (const width of [360, 390, 768, 1280, 1920]) {
          await page.setViewportSize({ width, height: width < 600 ? 844 : 800 });
          await page.evaluate((s) => (location.hash = `#/${s}`), id);
          await page.waitForSelector(`[data-testid="stage-${id}"]`);
          // Let the page's charts measure their width (they redraw on resize).
          await page.waitForTimeout(150);
          const [sw, iw] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
          if (sw > iw) wide.push(`${id} at ${width} px: ${sw} > ${iw}`);
        }
      }
      assert.deepEqual(wide, []);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
});
