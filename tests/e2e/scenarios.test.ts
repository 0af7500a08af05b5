import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { openApp } from './harness';

const MODEL_TIMEOUT = 120_000;
const RUN_TIMEOUT = 400_000;

async function stageStatus(page: Page, stage: string): Promise<string> {
  return (await page.getAttribute(`[data-testid="stage-progress"][data-stage="${stage}"]`, 'data-status'))!;
}

async function pick(page: Page, id: string): Promise<void> {
  await page.click(`[data-testid="scenario-card"][data-id="${id}"] h3 button`);
  await page.waitForSelector(`[data-testid="scenario-card"][data-id="${id}"] [data-testid="scenario-run"]:enabled`, {
    timeout: MODEL_TIMEOUT,
  });
}

/** Wait for the run to finish; a failed stage fails at once with its note (not after the timeout). */
async function waitForDone(page: Page): Promise<void> {
  await page.waitForSelector('[data-testid="scenario-done"], [data-testid="stage-progress"][data-status="failed"]', {
    timeout: RUN_TIMEOUT,
  });
  const failed = page.locator('[data-testid="stage-progress"][data-status="failed"]');
  if ((await failed.count()) > 0) assert.fail(`stage failed: ${await failed.first().textContent()}`);
}

/** Run a scenario to the end. */
async function runToEnd(page: Page, id: string): Promise<void> {
  await pick(page, id);
  await page.click(`[data-testid="scenario-card"][data-id="${id}"] [data-testid="scenario-run"]`);
  await waitForDone(page);
  for (const s of ['label', 'reward', 'ppo']) assert.equal(await stageStatus(page, s), 'done', `${id}: stage ${s}`);
}

/** On the Train page (the scenario's PPO run): no run-health alarm fired (issue 20: no false alarm). */
async function assertNoAlarm(page: Page, id: string): Promise<void> {
  assert.equal(await page.getAttribute('[data-testid="alarms"]', 'data-fired'), '0', `${id}: an alarm fired`);
  assert.equal(await page.locator('[data-testid="alarm"]').count(), 0, id);
}

/** Run a scenario to the end and check on its PPO run that no alarm fired. */
async function runToEndWithoutAlarm(page: Page, id: string): Promise<void> {
  await runToEnd(page, id);
  await page.click('[data-testid="inspect-ppo"]');
  await page.waitForSelector('[data-testid="stage-train"]');
  await assertNoAlarm(page, id);
  await page.click('nav a[href="#/start"]');
}

describe('scenarios and the start page', () => {
  it('the first screen shows real samples before the engine is ready', async () => {
    const app = await openApp('/', { waitForBackend: false });
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="fs-sample"]');
      // The page did not wait for the engine: the model is still loading.
      assert.equal(await page.getAttribute('[data-testid="engine-note"]', 'data-ready'), 'false');
      const rows = await page.locator('[data-testid="fs-sample"]').count();
      assert.ok(rows >= 4, `${rows} samples`);
      const cells = await page.locator('[data-testid="fs-sample"] td .text').allTextContents();
      assert.ok(cells.every((t) => t.trim().length > 0));
      // Base and policy differ somewhere (the shift the screen is there to show).
      const base = await page.locator('[data-testid="fs-sample"] td:nth-child(2) .text').allTextContents();
      const policy = await page.locator('[data-testid="fs-sample"] td:nth-child(3) .text').allTextContents();
      assert.notDeepEqual(base, policy);
      assert.equal(await page.locator('[data-testid="scenario-card"]').count(), 7);
      await page.waitForSelector('[data-testid="engine-note"][data-ready="true"]', { timeout: MODEL_TIMEOUT });
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });

  it('every scripted scenario runs end to end (quick), with pause/resume, inspect links and the β slider', async () => {
    const app = await openApp('/?quick=1#/start');
    const { page } = app;
    try {
      // Pause and resume in the middle of the first one.
      await pick(page, 'positive-reviews');
      await page.click('[data-testid="scenario-card"][data-id="positive-reviews"] [data-testid="scenario-run"]');
      await page.waitForSelector('[data-testid="stage-progress"][data-stage="label"][data-status="running"]', {
        timeout: MODEL_TIMEOUT,
      });
      await page.click('[data-testid="scenario-pause"]');
      await page.waitForSelector('[data-testid="stage-progress"][data-status="paused"]', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="scenario-resume"]');
      await page.waitForSelector('[data-testid="scenario-done"]', { timeout: RUN_TIMEOUT });
      for (const s of ['label', 'reward', 'ppo']) assert.equal(await stageStatus(page, s), 'done');
      // Samples from the scenario's own PPO run.
      assert.ok((await page.locator('[data-testid="result-sample"]').count()) > 0);

      // The inspect links open each stage's page, which shows what the stage made.
      await page.click('[data-testid="inspect-reward"]');
      await page.waitForSelector('[data-testid="rm-item"]');
      await page.goBack();
      await page.click('[data-testid="inspect-ppo"]');
      await page.waitForSelector('[data-testid="stage-train"]');
      assert.ok(Number(await page.textContent('[data-testid="ppo-iteration"]')) >= 1);
      await assertNoAlarm(page, 'positive-reviews');
      await page.click('nav a[href="#/start"]');

      for (const id of ['be-polite', 'short-and-sweet', 'never-say-x']) await runToEndWithoutAlarm(page, id);

      // Reward hacking: β from the slider reaches PPO.
      await pick(page, 'reward-hacking');
      await page.locator('[data-testid="beta-slider"]').fill('0.5');
      assert.equal(await page.textContent('[data-testid="beta-value"]'), '0.50');
      await runToEnd(page, 'reward-hacking');
      await page.click('[data-testid="inspect-ppo"]');
      assert.equal(Number(await page.inputValue('[data-testid="cfg-klCoef"]')), 0.5);
      await assertNoAlarm(page, 'reward-hacking');
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('“Your own taste” waits for human labels on the Feedback page, then trains', async () => {
    const app = await openApp('/?quick=1#/start');
    const { page } = app;
    try {
      await pick(page, 'your-own-taste');
      await page.click('[data-testid="scenario-card"][data-id="your-own-taste"] [data-testid="scenario-run"]');
      await page.waitForSelector('[data-testid="stage-feedback"]', { timeout: MODEL_TIMEOUT });
      // A bar on the Feedback page shows the count the run waits for.
      await page.waitForSelector('[data-testid="scenario-banner"]');
      await page.waitForFunction(
        () => document.querySelector('[data-testid="banner-count"]')?.textContent?.trim() === '0 / 8',
      );
      const count = () =>
        page.evaluate(() => document.querySelector('[data-testid="banner-count"]')?.textContent?.trim());
      /** Vote once; false when the run had already moved on to the Start page. */
      const vote = async (label: string): Promise<boolean> => {
        await page.waitForFunction(
          (sel) => location.hash !== '#/feedback' || document.querySelector<HTMLButtonElement>(sel)?.disabled === false,
          `[data-testid="vote-${label}"]`,
          { timeout: MODEL_TIMEOUT },
        );
        // Check and click in one step in the page: the run may leave the page at any moment.
        const item = await page.evaluate((sel) => {
          if (location.hash !== '#/feedback') return null;
          const id = document.querySelector('[data-testid="pair"]')?.getAttribute('data-item') ?? '';
          document.querySelector<HTMLButtonElement>(sel)!.click();
          return id;
        }, `[data-testid="vote-${label}"]`);
        if (item === null) return false;
        await page.waitForFunction(
          (prev) =>
            location.hash !== '#/feedback' ||
            document.querySelector('[data-testid="pair"]')?.getAttribute('data-item') !== prev,
          item,
          { timeout: MODEL_TIMEOUT },
        );
        return true;
      };
      // A tie is saved but carries no preference: the count does not move, and the bar says why.
      assert.ok(await vote('tie'));
      await page.waitForFunction(
        () =>
          /1 label without a preference .*does not count/.test(
            document.querySelector('[data-testid="banner-note"]')?.textContent ?? '',
          ),
        undefined,
        { timeout: MODEL_TIMEOUT },
      );
      assert.equal(await count(), '0 / 8');
      // Label until the run moves on (more than 8 only when the model wrote the same text twice).
      let votes = 0;
      while (await vote(votes % 2 ? 'B' : 'A')) {
        votes++;
        assert.ok(votes <= 24, `still waiting after ${votes} labels: ${await count()}`);
      }
      assert.ok(votes >= 8, `${votes} labels`);
      // The runner goes back to the Start page by itself and finishes.
      await page.waitForSelector('[data-testid="scenario-progress"]', { timeout: MODEL_TIMEOUT });
      await waitForDone(page);
      assert.match((await page.textContent('[data-stage="label"]'))!, /\d+ labels by you/);
      await page.click('[data-testid="inspect-ppo"]');
      await page.waitForSelector('[data-testid="stage-train"]');
      await assertNoAlarm(page, 'your-own-taste');
    } finally {
      await app.close();
    }
  });

  it('the tour opens, advances across stages, is skipped with Esc and resumes after a reload', async () => {
    const app = await openApp('/', { waitForBackend: false });
    const { page } = app;
    try {
      await page.click('[data-testid="tour-start"]');
      await page.waitForSelector('[data-testid="tour"][data-step="welcome"]');
      await page.waitForSelector('[data-testid="tour-highlight"]');
      // Focus moves to the tour card.
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'tour');
      await page.click('[data-testid="tour-next"]');
      await page.waitForSelector('[data-testid="tour"][data-step="base-model"]');
      assert.match(page.url(), /#\/model$/);
      await page.click('[data-testid="tour-next"]');
      await page.waitForSelector('[data-testid="tour"][data-step="feedback"]');
      assert.match(page.url(), /#\/feedback$/);
      await page.click('[data-testid="tour-back"]');
      await page.waitForSelector('[data-testid="tour"][data-step="base-model"]');
      await page.click('[data-testid="tour-next"]');
      await page.waitForSelector('[data-testid="tour"][data-step="feedback"]');
      await page.keyboard.press('Escape');
      await page.waitForSelector('[data-testid="tour"]', { state: 'detached' });

      await page.goto(new URL('/#/start', page.url()).href);
      await page.reload();
      await page.click('[data-testid="tour-resume"]');
      await page.waitForSelector('[data-testid="tour"][data-step="feedback"]');
      // On to PPO's loss terms on the Train page's charts.
      for (const step of ['reward-model', 'sft', 'policy-loss', 'value-loss', 'entropy']) {
        await page.click('[data-testid="tour-next"]');
        await page.waitForSelector(`[data-testid="tour"][data-step="${step}"]`);
      }
      const hl = await page.locator('[data-testid="tour-highlight"]').boundingBox();
      const chart = await page.locator('[data-metric="policy/entropy_avg"]').boundingBox();
      assert.ok(hl && chart && Math.abs(hl.x - chart.x) < 10 && Math.abs(hl.y - chart.y) < 10, 'highlights the chart');
      await page.click('[data-testid="tour-skip"]');
      await page.waitForSelector('[data-testid="tour"]', { state: 'detached' });
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
});
