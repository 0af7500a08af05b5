/**
 * Run bundled scenarios at FULL size (their own settings, no `?quick=1`) in the real app in
 * headless Chromium, one fresh browser context (own IndexedDB) per scenario, and dump each PPO
 * run's metric history as the Train page recorded it (TRL-named metrics, the rollout statistics
 * and the evaluation rows): the healthy runs the run-health alarms must stay quiet on (issue 20).
 *
 *   E2E_OUT_DIR=dist-measure nice npx tsx scripts/experiments/scenario-histories.ts \
 *     --out runs/scenario-histories positive-reviews be-polite …
 *
 * The app must already be built in `E2E_OUT_DIR` (this script does not rebuild it). Writes
 * `<out>/<id>.json`: { scenario, seconds, iterations, stages, config, history, evals } where
 * `history` and `evals` are the saved PPO run's (read from IndexedDB after the run). Then
 * `scripts/experiments/compact-histories.ts` keeps only the metrics the alarms read.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { closeShared, openApp } from '../../tests/e2e/harness';

const { values: a, positionals } = parseArgs({
  options: { out: { type: 'string', default: 'runs/scenario-histories' } },
  allowPositionals: true,
  strict: true,
});
const OUT = resolve(a.out!);
const RUN_TIMEOUT = 3 * 3600_000;

async function runOne(id: string): Promise<void> {
  const t0 = performance.now();
  const app = await openApp('/#/start');
  const { page } = app;
  try {
    const card = `[data-testid="scenario-card"][data-id="${id}"]`;
    await page.click(`${card} h3 button`);
    await page.waitForSelector(`${card} [data-testid="scenario-run"]:enabled`, { timeout: 300_000 });
    await page.click(`${card} [data-testid="scenario-run"]`);
    let last = '';
    const timer = setInterval(() => {
      void page
        .locator('[data-testid="stage-progress"]')
        .allTextContents()
        .then((t) => {
          const s = t.map((x) => x.replace(/\s+/g, ' ').trim()).join(' | ');
          if (s !== last) console.log(`[${id} ${((performance.now() - t0) / 1000).toFixed(0)} s] ${(last = s)}`);
        })
        .catch(() => {});
    }, 30_000);
    try {
      await page.waitForSelector(
        '[data-testid="scenario-done"], [data-testid="stage-progress"][data-status="failed"]',
        {
          timeout: RUN_TIMEOUT,
        },
      );
    } finally {
      clearInterval(timer);
    }
    const failed = page.locator('[data-testid="stage-progress"][data-status="failed"]');
    if ((await failed.count()) > 0) throw new Error(`${id}: stage failed: ${await failed.first().textContent()}`);
    // The PPO run record (the only one in this fresh context), as the Train page saved it.
    const read = (store: string) =>
      page.evaluate(
        (name) =>
          new Promise<unknown[]>((res, rej) => {
            const req = indexedDB.open('rlhf-playground');
            req.onerror = () => rej(req.error);
            req.onsuccess = () => {
              const all = req.result.transaction(name).objectStore(name).getAll();
              all.onsuccess = () => res(all.result as unknown[]);
              all.onerror = () => rej(all.error);
            };
          }),
        store,
      );
    type Rec = { kind: string; setup?: { config?: unknown }; history: { metrics: object }[]; evals?: unknown[] };
    const ppo = ((await read('runs')) as Rec[]).filter((r) => r.kind === 'ppo');
    if (ppo.length !== 1) throw new Error(`${id}: ${ppo.length} PPO runs saved`);
    const seconds = (performance.now() - t0) / 1000;
    const out = {
      scenario: id,
      seconds,
      iterations: ppo[0].history.filter((r) => 'objective/kl' in r.metrics).length,
      // Each stage's closing note (labels made; the reward model's pairs and held-out accuracy).
      stages: (await page.locator('[data-testid="stage-progress"]').allTextContents()).map((x) =>
        x.replace(/\s+/g, ' ').trim(),
      ),
      config: ppo[0].setup?.config ?? null,
      history: ppo[0].history,
      evals: ppo[0].evals ?? [],
      errors: app.errors,
    };
    writeFileSync(join(OUT, `${id}.json`), JSON.stringify(out) + '\n');
    console.log(`[${id}] done in ${seconds.toFixed(0)} s: ${out.iterations} iterations, ${app.errors.length} errors`);
  } finally {
    await app.close();
  }
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  for (const id of positionals) {
    try {
      await runOne(id);
    } catch (e) {
      console.error(`[${id}] ${(e as Error).message}`);
    }
  }
  await closeShared();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
