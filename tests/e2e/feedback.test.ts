/**
 * Feedback studio: keyboard labelling saved to IndexedDB, the ready queue, undo,
 * arena reveal, ranking / rating / edit, and a scripted labeller labelling a batch.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { openApp } from './harness';

const MODEL_TIMEOUT = 120_000;

async function currentItem(page: Page): Promise<string> {
  return (await page.getAttribute('[data-testid="pair"]', 'data-item', { timeout: MODEL_TIMEOUT }))!;
}

async function labelled(page: Page): Promise<number> {
  return Number(await page.textContent('[data-testid="labelled-count"]'));
}

async function waitLabelled(page: Page, n: number, timeout = 10_000): Promise<void> {
  await page.waitForFunction(
    (want) => document.querySelector('[data-testid="labelled-count"]')?.textContent === String(want),
    n,
    { timeout },
  );
}

async function waitReady(page: Page, n: number): Promise<void> {
  await page.waitForFunction(
    (want) => Number(document.querySelector('[data-testid="queue-ready"]')?.textContent) >= want,
    n,
    { timeout: MODEL_TIMEOUT },
  );
}

async function setMaxTokens(page: Page, n: number): Promise<void> {
  await page.getByLabel('Max new tokens').fill(String(n));
  // Leave the field, so the studio's keys act again.
  await page.click('[data-testid="studio-status"]');
}

async function gotoData(page: Page): Promise<void> {
  await page.click('nav a[href="#/data"]');
  await page.waitForSelector('[data-testid="stage-data"]');
}

async function count(page: Page, id: string): Promise<number> {
  return Number(await page.textContent(`[data-testid="${id}"]`));
}

describe('feedback studio', () => {
  it('labels five pairs with the keyboard from a ready queue; undo; they survive a reload', async () => {
    const app = await openApp('/#/feedback');
    const { page } = app;
    try {
      // Before the model is ready the studio says it is waiting (it may already be ready on a fast machine).
      const first = await currentItem(page);
      assert.ok(first);
      await setMaxTokens(page, 16);
      // Settings changed: the queue refills with the new settings; wait for it to be ready ahead of the user.
      await waitReady(page, 3);

      const keys = ['1', 'b', 't', 'x', 'a'];
      const seen = new Set<string>();
      const prompts: string[] = [];
      for (let i = 0; i < keys.length; i++) {
        const item = await currentItem(page);
        assert.ok(!seen.has(item), 'a new pair for every vote');
        seen.add(item);
        prompts.push((await page.locator('[data-testid="response-A"] .prompt').textContent())!);
        await page.keyboard.press(keys[i]);
        // The next pair is there at once: the queue was filled ahead (no generation in between).
        await waitLabelled(page, i + 1, 3_000);
      }
      assert.equal(await labelled(page), 5);

      // Undo takes the last label back and shows its pair again; a new vote saves it again.
      const before = await currentItem(page);
      await page.keyboard.press('u');
      await waitLabelled(page, 4);
      assert.notEqual(await currentItem(page), before);
      await page.keyboard.press('Control+z');
      await waitLabelled(page, 3);
      await page.keyboard.press('x');
      await waitLabelled(page, 4);
      await page.click('[data-testid="vote-A"]');
      await waitLabelled(page, 5);

      await page.reload();
      await gotoData(page);
      await page.waitForFunction(() => document.querySelector('[data-testid="count-all"]')?.textContent === '5');
      assert.equal(await count(page, 'count-label-A'), 2);
      assert.equal(await count(page, 'count-label-B'), 1);
      assert.equal(await count(page, 'count-label-tie'), 1);
      assert.equal(await count(page, 'count-label-both-bad'), 1);
      assert.equal(await count(page, 'count-label-skip'), 0);
      assert.equal(await page.locator('[data-testid="record"]').count(), 5);
      const listed = await page.locator('[data-testid="record-prompt"]').allTextContents();
      assert.deepEqual([...listed].sort(), [...prompts].sort());
      const annotators = new Set(await page.locator('[data-testid="record-annotator"]').allTextContents());
      assert.deepEqual([...annotators], ['me']);

      // Records carry what they were made with.
      const rec = await page.evaluate(async () => {
        const req = indexedDB.open('rlhf-playground');
        const db = await new Promise<IDBDatabase>((res, rej) => {
          req.onsuccess = () => res(req.result);
          req.onerror = () => rej(req.error);
        });
        const all = db.transaction('preferences').objectStore('preferences').getAll();
        return new Promise<unknown[]>((res) => (all.onsuccess = () => res(all.result)));
      });
      for (const r of rec as {
        modelId: string;
        sampling: { maxNewTokens: number };
        responses: { tokenIds: number[] }[];
        mode: string;
      }[]) {
        assert.equal(r.modelId, 'tiny-gpt');
        assert.equal(r.mode, 'pairwise');
        assert.equal(r.sampling.maxNewTokens, 16);
        assert.ok(r.responses.every((x) => x.tokenIds.length > 0));
      }
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });

  it('arena reveals the settings after the vote; ranking, rating and edit save their records', async () => {
    const app = await openApp('/#/feedback');
    const { page } = app;
    try {
      await currentItem(page);
      await setMaxTokens(page, 12);
      await waitReady(page, 2);
      // A full disk: the label is refused with a clear message, nothing is saved and the pair stays.
      await page.evaluate(() => {
        const w = window as unknown as { __restoreAdd: () => void };
        const add = IDBObjectStore.prototype.add;
        w.__restoreAdd = () => (IDBObjectStore.prototype.add = add);
        IDBObjectStore.prototype.add = function () {
          throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
        };
      });
      const stuck = await currentItem(page);
      await page.keyboard.press('1');
      await page.waitForSelector('[data-testid="notice"]:has-text("storage is full")');
      assert.equal(await labelled(page), 0);
      assert.equal(await currentItem(page), stuck);
      await page.evaluate(() => (window as unknown as { __restoreAdd: () => void }).__restoreAdd());

      await page.check('[data-testid="arena"]');
      await page.waitForSelector('[data-testid="pair"][data-arena="true"]', { timeout: MODEL_TIMEOUT });
      assert.equal(await page.locator('[data-testid="arena-reveal"]').count(), 0);
      assert.match((await page.textContent('[data-testid="pair"]'))!, /hidden until you vote/);
      await page.keyboard.press('2');
      await page.waitForSelector('[data-testid="arena-reveal"]');
      assert.match(
        (await page.textContent('[data-testid="arena-reveal"]'))!,
        /A was temperature \d\.\d\d, B was temperature/,
      );

      await page.click('[data-testid="mode-ranking"]');
      await page.waitForSelector('[data-testid="ranking"]', { timeout: MODEL_TIMEOUT });
      assert.equal(await page.locator('[data-testid="rank-item"]').count(), 4);
      for (const k of ['3', '1', '4', '2']) await page.keyboard.press(k);
      const order = await page
        .locator('[data-testid="rank-item"]')
        .evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-sample'))));
      assert.deepEqual(order, [2, 0, 3, 1]);
      await page.keyboard.press('Enter');
      await waitLabelled(page, 2);

      await page.click('[data-testid="mode-rating"]');
      await page.waitForSelector('[data-testid="rating"]', { timeout: MODEL_TIMEOUT });
      await page.keyboard.press('6');
      await page.keyboard.press('2');
      await page.locator('[data-testid="rate-item"]').nth(1).getByLabel('Repetitive').check();
      await page.keyboard.press('Enter');
      await waitLabelled(page, 3);

      await page.click('[data-testid="mode-edit"]');
      await page.waitForSelector('[data-testid="edit"]', { timeout: MODEL_TIMEOUT });
      await page.fill('[data-testid="edit-text"]', ' a better ending, written by hand.');
      await page.keyboard.press('Control+Enter');
      await waitLabelled(page, 4);

      await gotoData(page);
      await page.waitForFunction(() => document.querySelector('[data-testid="count-all"]')?.textContent === '4');
      assert.equal(await count(page, 'count-mode-pairwise'), 1);
      assert.equal(await count(page, 'count-mode-ranking'), 1);
      assert.equal(await count(page, 'count-mode-rating'), 1);
      assert.equal(await count(page, 'count-mode-edit'), 1);
      assert.equal(await count(page, 'count-demos'), 1);
      const labels = await page.locator('[data-testid="record-label"]').allTextContents();
      assert.ok(labels.includes('C > A > D > B'), labels.join(' | '));
      assert.ok(labels.includes('A: 6, B: 2'), labels.join(' | '));
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });

  it('a scripted labeller labels 50 pairs in one action', async () => {
    const app = await openApp('/#/feedback');
    const { page } = app;
    try {
      await currentItem(page);
      await setMaxTokens(page, 16);
      await waitReady(page, 2);
      // Two pairs labelled by a person, for the agreement check below.
      await page.keyboard.press('1');
      await waitLabelled(page, 1);
      await page.keyboard.press('2');
      await waitLabelled(page, 2);
      await page.click('[data-testid="add-labeller"]');
      await page.selectOption('[data-testid="labeller-kind"]', 'sentiment');
      await page.fill('[data-testid="annotator-name"]', 'sentiment-bot');
      await page.click('[data-testid="create-annotator"]');
      await page.waitForSelector('[data-testid="auto-label"]');
      // The labeller's verdict on the pair on screen replaces the person's buttons.
      await page.waitForSelector('[data-testid="labeller-verdict"]', { timeout: MODEL_TIMEOUT });
      await page.fill('[data-testid="auto-n"]', '50');
      const t0 = Date.now();
      await page.click('[data-testid="auto-start"]');
      await page.waitForSelector('[data-testid="auto-status"][data-running="false"]', { timeout: 300_000 });
      const seconds = (Date.now() - t0) / 1000;
      assert.equal(await page.getAttribute('[data-testid="auto-status"]', 'data-saved'), '50');
      console.log(`  50 pairs generated and labelled in ${seconds.toFixed(1)} s`);

      await gotoData(page);
      await page.waitForFunction(() => document.querySelector('[data-testid="count-all"]')?.textContent === '52');
      const labels = ['A', 'B', 'tie'].map((l) => page.textContent(`[data-testid="count-label-${l}"]`));
      const sum = (await Promise.all(labels)).reduce((s, x) => s + Number(x), 0);
      assert.equal(sum, 52);

      // Agreement: the labeller judges the person's two pairs, then raw agreement and κ are shown.
      await page.selectOption('[data-testid="agree-a"]', 'me');
      await page.selectOption('[data-testid="relabel-with"]', { label: 'sentiment-bot' });
      await page.click('[data-testid="relabel-go"]');
      await page.waitForSelector('[data-testid="agreement"]');
      assert.match((await page.textContent('[data-testid="agreement"]'))!, /Shared comparisons\s*2/);
      assert.match((await page.textContent('[data-testid="agree-raw"]'))!, /^(0|50|100)\.0%$/);
      await page.waitForFunction(() => document.querySelector('[data-testid="count-all"]')?.textContent === '54');
      await page.selectOption('[data-testid="filter-annotator"]', 'sentiment-bot');
      await page.waitForFunction(() => document.querySelector('[data-testid="list-total"]')?.textContent === '52');
      assert.equal(await page.locator('[data-testid="record"]').count(), 25);
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });
});
