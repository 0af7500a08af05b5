/**
 * GRPO and online DPO runs saved and resumed like PPO runs: a quick run (checkpoint every
 * iteration) is saved to IndexedDB, listed on the Runs page under its algorithm, survives a
 * reload, and resumes from the saved iteration with its curves and settings, then trains on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openApp } from './harness';

const MODEL_TIMEOUT = 120_000;
const ITER_TIMEOUT = 180_000;

const iteration = () => Number(document.querySelector('[data-testid="group-iteration"]')?.textContent ?? '-1');

interface Case {
  algo: 'grpo' | 'online-dpo';
  /** As the Runs page and the run's default name show it. */
  label: string;
  url: string;
  /** A setting of the quick run and its value in the form after resuming. */
  input: [string, string];
  /** A curve drawn from the saved history. */
  metric: string;
}

const CASES: Case[] = [
  {
    algo: 'grpo',
    label: 'GRPO',
    url: '/?grpoBatchSize=4&grpoNumGenerations=2&grpoMaxCompletionLength=6&checkpointEvery=1#/train',
    input: ['grpo-batchSize', '4'],
    metric: 'reward',
  },
  {
    algo: 'online-dpo',
    label: 'Online DPO',
    url: '/?odpoBatchSize=2&odpoMaxNewTokens=6&checkpointEvery=1#/train',
    input: ['online-dpo-batchSize', '2'],
    metric: 'objective/scores',
  },
];

describe('GRPO and online DPO runs: saved, listed, resumed after a reload', () => {
  for (const c of CASES)
    it(`a quick ${c.label} run is saved, appears on the Runs page as ${c.label}, survives a reload and resumes`, async () => {
      await saveListResume(c);
    });
});

async function saveListResume({ algo, label, url, input, metric }: Case): Promise<void> {
  const app = await openApp(url);
  const { page } = app;
  try {
    await page.click(`[data-testid="method-${algo}"]`);
    await page.waitForSelector(`[data-testid="group-panel"][data-algo="${algo}"]`);
    await page.selectOption('[data-testid="group-reward-kind"]', 'labeller');
    await page.waitForSelector('[data-testid="group-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
    await page.click('[data-testid="group-start"]');
    await page.waitForFunction(
      (n) => Number(document.querySelector('[data-testid="group-iteration"]')?.textContent ?? '0') >= n,
      2,
      {
        timeout: ITER_TIMEOUT,
      },
    );
    await page.click('[data-testid="group-pause"]');
    await page.waitForSelector('[data-testid="group-resume"]', { timeout: ITER_TIMEOUT });
    const reached = await page.evaluate(iteration);
    assert.ok(reached >= 2, `iteration ${reached}`);
    // Saved on pause: the record's iteration is the one reached, its tensors are chunks.
    await page.waitForFunction(
      async (n: { algo: string; reached: number }) => {
        const db = await new Promise<IDBDatabase>((res, rej) => {
          const req = indexedDB.open('rlhf-playground');
          req.onsuccess = () => res(req.result);
          req.onerror = () => rej(req.error);
        });
        const all = await new Promise<{ kind: string; state: { iteration: number } }[]>((res) => {
          const r = db.transaction('runs').objectStore('runs').getAll();
          r.onsuccess = () => res(r.result);
        });
        db.close();
        return all.some((r) => r.kind === n.algo && r.state.iteration === n.reached);
      },
      { algo, reached },
      { timeout: ITER_TIMEOUT },
    );

    // Listed on the Runs page as a run of its algorithm.
    await page.click('nav a[href="#/runs"]');
    const row = page.locator(`[data-testid="run-row"][data-kind="${algo}"]`);
    await row.waitFor();
    assert.equal(await row.count(), 1);
    assert.equal((await row.locator('[data-testid="run-kind"]').textContent())!.trim(), label);
    assert.ok((await row.locator('[data-testid="run-name"]').textContent())!.startsWith(`${label} · `));

    // A reload: the saved run is offered on the Train page and resumes at the same iteration.
    await page.reload();
    await page.click('nav a[href="#/train"]');
    await page.click(`[data-testid="method-${algo}"]`);
    const resume = page.locator('[data-testid="group-resume-saved"]');
    await resume.waitFor({ timeout: MODEL_TIMEOUT });
    await page.waitForSelector('[data-testid="group-resume-saved"]:not([disabled])', { timeout: MODEL_TIMEOUT });
    assert.match((await resume.textContent())!, new RegExp(`iteration ${reached}\\)`));
    await resume.click();
    await page.waitForFunction(
      (n) => Number(document.querySelector('[data-testid="group-iteration"]')?.textContent ?? '-1') === n,
      reached,
    );
    // Its curves came back with it, and its settings.
    await page.waitForSelector(`[data-metric="${metric}"] [data-testid="chart-value"]:not(:empty)`);
    assert.equal(await page.inputValue(`[data-testid="${input[0]}"]`), input[1]);
    const status = await page.evaluate(async () => {
      const e = (globalThis as unknown as { rlhf: { engine: { engine: import('../../src/lib/engine/types').Engine } } })
        .rlhf.engine.engine;
      return e.groupStatus();
    });
    assert.equal(status?.algo, algo);
    assert.equal(status?.iteration, reached);
    // It trains on from there.
    await page.click('[data-testid="group-resume"]');
    await page.waitForFunction(
      (n) => Number(document.querySelector('[data-testid="group-iteration"]')?.textContent ?? '0') > n,
      reached,
      { timeout: ITER_TIMEOUT },
    );
    await page.click('[data-testid="group-pause"]');
    await page.waitForSelector('[data-testid="group-resume"]', { timeout: ITER_TIMEOUT });
    assert.deepEqual(app.errors, []);
  } finally {
    await app.close();
  }
}
