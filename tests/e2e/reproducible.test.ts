/**
 * Same seed and backend → same scripted labels, same reward model, same PPO curves (issue 15,
 * item 7). One scenario ("Make reviews positive", quick mode) is run in two fresh browser
 * contexts (own IndexedDB each); the PPO run is taken to 5 iterations with "One iteration",
 * then the labels, the reward model and the PPO metrics are read back from IndexedDB and
 * compared. Wall-clock fields (times, ids, dates) are left out; everything else must be equal.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { openApp } from './harness';

const MODEL_TIMEOUT = 120_000;
const RUN_TIMEOUT = 400_000;
const ITER_TIMEOUT = 180_000;
const SCENARIO = 'positive-reviews';
const ITERATIONS = 5;

interface Snapshot {
  /** Every preference record as [prompt, texts, label, seed, annotator], sorted. */
  labels: string[];
  rewardModels: { history: unknown; summary: unknown; head: number[] }[];
  /** The PPO run's metric rows of iterations 1..5 (evaluation rows included), without times. */
  ppo: { step: number; metrics: Record<string, number> }[][];
}

/**
 * Every value of an IndexedDB store, as JSON (Maps as objects, typed arrays as arrays). `drop`:
 * keys left out (a PPO checkpoint's weights); Map entries of the trunk (`transformer.*`) are left
 * out too, so a reward model keeps only its head. (No named functions inside: the test runner's
 * transpiler would add a helper the page does not have.)
 */
async function getAll(page: Page, store: string, drop: string[] = []): Promise<any[]> {
  const json = await page.evaluate(
    ([name, dropKeys]) =>
      new Promise<string>((res, rej) => {
        const open = indexedDB.open('rlhf-playground');
        open.onerror = () => rej(open.error);
        open.onsuccess = () => {
          const db = open.result;
          const r = db
            .transaction(name as string)
            .objectStore(name as string)
            .getAll();
          r.onerror = () => rej(r.error);
          r.onsuccess = () => {
            db.close();
            res(
              JSON.stringify(r.result, (k, v) =>
                (dropKeys as string[]).includes(k)
                  ? undefined
                  : v instanceof Map
                    ? Object.fromEntries([...v].filter((e) => !String(e[0]).startsWith('transformer.')))
                    : ArrayBuffer.isView(v)
                      ? Array.from(v as Float32Array)
                      : v,
              ),
            );
          };
        };
      }),
    [store, drop] as const,
  );
  return JSON.parse(json);
}

async function readDb(page: Page): Promise<Snapshot> {
  const [prefs, rms, runs] = [
    await getAll(page, 'preferences'),
    await getAll(page, 'rewardModels'),
    await getAll(page, 'runs', ['state']),
  ];
  return {
    labels: prefs
      .map((r) =>
        JSON.stringify([r.prompt, r.responses.map((x: { text: string }) => x.text), r.label, r.seed, r.annotator.name]),
      )
      .sort(),
    rewardModels: rms.map((m) => {
      const s = m.summary;
      const w = m.state.weights as Record<string, number[]>;
      return {
        history: m.history,
        summary: [
          s.mode,
          s.pairs,
          s.trainPairs,
          s.valPairs,
          s.bestEpoch,
          s.accuracy,
          s.evalAccuracy,
          s.normalisation,
          s.valPrompts,
        ],
        head: [...w['score.weight'], ...w['score.bias']],
      };
    }),
    ppo: runs
      .filter((r) => r.kind === 'ppo')
      .map((r) =>
        (r.history as { step: number; metrics: Record<string, number> }[])
          .filter((row) => row.step <= ITERATIONS)
          .map((row) => ({
            step: row.step,
            metrics: Object.fromEntries(Object.entries(row.metrics).filter(([k]) => !k.startsWith('time/'))),
          })),
      ),
  };
}

/** A fresh profile: run the scenario (quick), then PPO to `ITERATIONS`, saving each one. */
async function runFresh(extra?: (page: Page, first: Snapshot) => Promise<void>): Promise<Snapshot> {
  const app = await openApp('/?quick=1#/start');
  const { page } = app;
  try {
    const card = `[data-testid="scenario-card"][data-id="${SCENARIO}"]`;
    await page.click(`${card} h3 button`);
    await page.waitForSelector(`${card} [data-testid="scenario-run"]:enabled`, { timeout: MODEL_TIMEOUT });
    await page.click(`${card} [data-testid="scenario-run"]`);
    await page.waitForSelector('[data-testid="scenario-done"], [data-testid="stage-progress"][data-status="failed"]', {
      timeout: RUN_TIMEOUT,
    });
    const failed = page.locator('[data-testid="stage-progress"][data-status="failed"]');
    if ((await failed.count()) > 0) assert.fail(`stage failed: ${await failed.first().textContent()}`);

    // Quick mode runs one PPO iteration; "One iteration" steps on, and saves each one. The next
    // step waits for that save (a save asked for while one is in flight is skipped).
    await page.click('[data-testid="inspect-ppo"]');
    await page.waitForSelector('[data-testid="stage-train"]');
    const saved = (n: number) =>
      page
        .waitForFunction(
          (k) => document.querySelector('[data-testid="ppo-saved"]')?.textContent?.trim() === `saved at ${k}`,
          n,
          { timeout: 60_000 },
        )
        .catch(async (e: Error) => {
          const status = await page.textContent('[data-testid="ppo-iteration"] >> xpath=..');
          const notes = await page.locator('[data-testid="notice"]').allTextContents();
          throw new Error(`no checkpoint at ${n}: ${status} | notices: ${notes.join(' / ')} (${e.message})`);
        });
    const first = Number(await page.textContent('[data-testid="ppo-iteration"]'));
    await saved(first);
    for (let i = first + 1; i <= ITERATIONS; i++) {
      await page.waitForSelector('[data-testid="ppo-step"]:not([disabled])', { timeout: ITER_TIMEOUT });
      await page.click('[data-testid="ppo-step"]');
      await page.waitForFunction(
        (n) => Number(document.querySelector('[data-testid="ppo-iteration"]')?.textContent ?? '0') >= n,
        i,
        { timeout: ITER_TIMEOUT },
      );
      await saved(i);
    }
    const snap = await readDb(page);
    await extra?.(page, snap);
    assert.deepEqual(app.errors, []);
    assert.deepEqual(app.foreignRequests, []);
    return snap;
  } finally {
    await app.close();
  }
}

describe('reproducible runs', () => {
  it('one seed in two fresh profiles: the same labels, reward model and first 5 PPO iterations', async () => {
    const a = await runFresh();
    // The second profile also labels 8 more pairs afterwards: a second run in one profile
    // must give other pairs (its seeds count the labels already saved).
    const b = await runFresh(async (page, first) => {
      await page.click('nav a[href="#/feedback"]');
      await page.waitForSelector('[data-testid="auto-label"]', { timeout: MODEL_TIMEOUT });
      await page.fill('[data-testid="auto-n"]', '8');
      await page.click('[data-testid="auto-start"]');
      await page.waitForSelector('[data-testid="auto-status"][data-running="false"]', { timeout: RUN_TIMEOUT });
      assert.equal(await page.getAttribute('[data-testid="auto-status"]', 'data-saved'), '8');
      const after = await readDb(page);
      const pairsOf = (labels: string[]) => new Set(labels.map((l) => JSON.stringify(JSON.parse(l).slice(0, 2))));
      const before = pairsOf(first.labels);
      const added = [...pairsOf(after.labels)].filter((p) => !before.has(p));
      assert.ok(added.length >= 6, `the second run labelled ${added.length} new pairs of 8`);
    });

    // The scenario's 96 labels (quick mode), from both sides of the labeller.
    assert.equal(a.labels.length, 96);
    const choices = new Set(a.labels.map((l) => JSON.parse(l)[2]));
    assert.ok(choices.has('A') && choices.has('B'), `labels: ${[...choices]}`);
    assert.deepEqual(b.labels, a.labels);

    assert.equal(a.rewardModels.length, 1);
    assert.ok(a.rewardModels[0].head.some((x) => x !== 0));
    assert.deepEqual(b.rewardModels, a.rewardModels);

    assert.equal(a.ppo.length, 1);
    const iterations = a.ppo[0].filter((r) => 'objective/kl' in r.metrics);
    assert.deepEqual(
      iterations.map((r) => r.step),
      [1, 2, 3, 4, 5],
    );
    assert.ok(iterations.every((r) => Number.isFinite(r.metrics['objective/scores'])));
    // The policy moved: KL to the reference is above 0 after the first update.
    assert.ok(iterations.slice(1).some((r) => r.metrics['objective/kl'] !== 0));
    assert.deepEqual(b.ppo, a.ppo);
  });
});
