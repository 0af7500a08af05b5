/**
 * JavaScript reward functions on the Train page: a user writes one, bad ones (throws, returns the
 * wrong length, loops forever, a syntax error) are reported with their line and the PPO run
 * pauses with nothing lost; a good one trains and logs rewards/<name>/mean; a reload keeps the
 * code; the code cannot reach fetch or IndexedDB; eval works in the reward worker only; a shared
 * link's code is shown and not used until accepted; the in-thread engine (engine=main) runs them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { OUT_DIR, openApp } from './harness';
import { encodeCode } from '../../src/lib/rlhf/reward-functions';

const MODEL_TIMEOUT = 120_000;
const ITER_TIMEOUT = 180_000;
const TINY = 'batchSize=4&maxNewTokens=8&ppoEpochs=1&evalEvery=100&checkpointEvery=1';

const THROWS = `// throws on purpose
function reward(prompts, completions) {
  const x = null;
  return completions.map(() => x.length);
}
`;
const WRONG_LENGTH = `// one score for the whole batch

function reward(prompts, completions) {
  return [1];
}
`;
const LOOPS = `function reward(prompts, completions) {
  while (true) {}
}
`;
const GOOD = `// longer completions score higher
function reward(prompts, completions) {
  return completions.map((c) => c.length / 10);
}
`;
const SNOOP = `function reward(prompts, completions) {
  const g = Function('return this')();
  const names = ['fetch', 'indexedDB', 'XMLHttpRequest', 'WebSocket', 'EventSource', 'caches', 'importScripts', 'Worker', 'BroadcastChannel'];
  const found = names.filter((n) => typeof g[n] !== 'undefined' || typeof self[n] !== 'undefined');
  if (typeof navigator.storage !== 'undefined') found.push('navigator.storage');
  if (found.length) throw new Error('reachable: ' + found.join(', '));
  if (eval('1 + 1') !== 2) throw new Error('no eval');
  return completions.map(() => 1);
}
`;

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Serious and critical axe-core violations on the page as it is now. */
async function axeViolations(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in globalThis))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    type Result = { violations: { id: string; impact: string | null; nodes: { target: unknown[] }[] }[] };
    const axe = (globalThis as unknown as { axe: { run(ctx: Document, opts: object): Promise<Result> } }).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      targets: v.nodes.map((n) => JSON.stringify(n.target)),
    }));
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.targets.slice(0, 4).join(' ')}`);
}

async function iteration(page: Page): Promise<number> {
  return Number(await page.textContent('[data-testid="ppo-iteration"]'));
}

async function setCode(page: Page, code: string): Promise<void> {
  await page.fill('[data-testid="reward-fn-code"] >> nth=0', code);
}

async function errorText(page: Page): Promise<string> {
  await page.waitForSelector('[data-testid="ppo-error"]', { timeout: ITER_TIMEOUT });
  return (await page.textContent('[data-testid="ppo-error"]'))!;
}

/** Apply the editor's code to the paused run and resume it. */
async function applyAndResume(page: Page): Promise<void> {
  await page.click('[data-testid="reward-fn-apply"]');
  await page.waitForSelector('[data-testid="ppo-error"]', { state: 'detached' });
  await page.click('[data-testid="ppo-resume"]');
}

describe('JavaScript reward functions', () => {
  it('bad functions pause the run naming the line; a good one trains; a reload keeps the code', async () => {
    const app = await openApp(`/?${TINY}#/train`);
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.selectOption('[data-testid="reward-kind"]', 'function');
      await page.waitForSelector('[data-testid="reward-fn-code"]');
      assert.match(await page.inputValue('[data-testid="reward-fn-code"]'), /function reward\(prompts, completions\)/);

      // Throws: the message names the function and the line; the run is paused at iteration 0.
      await setCode(page, THROWS);
      await page.click('[data-testid="ppo-start"]');
      let msg = await errorText(page);
      assert.match(msg, /^Reward function "format", line 4: TypeError: Cannot read properties of null/);
      assert.match(msg, /paused at iteration 0; nothing was lost/);
      await page.waitForSelector('[data-testid="ppo-resume"]:not([disabled])');
      assert.equal(await iteration(page), 0);
      assert.equal(await page.getAttribute('.gutter .bad', 'aria-hidden'), null); // marked in the gutter…
      assert.equal((await page.textContent('.gutter .bad'))!.trim(), '4'); // …at line 4

      // Wrong length: blamed on the line that defines reward.
      await setCode(page, WRONG_LENGTH);
      await applyAndResume(page);
      msg = await errorText(page);
      assert.match(msg, /^Reward function "format", line 3: it returned 1 scores for 4 completions/);
      assert.equal(await iteration(page), 0);

      // An endless loop: stopped after the time limit, the worker restarted for the next batch.
      await setCode(page, LOOPS);
      await applyAndResume(page);
      msg = await errorText(page);
      assert.match(msg, /^Reward function "format", line 1: did not finish a batch of 4 completions within 3 s/);
      assert.equal(await iteration(page), 0);
      const weights = await page.evaluate(async () => {
        const e = (
          globalThis as unknown as { rlhf: { engine: { engine: import('../../src/lib/engine/types').Engine } } }
        ).rlhf.engine.engine;
        return (await e.ppoStatus())?.iteration;
      });
      assert.equal(weights, 0, 'the engine made no update on a failed batch');

      // A good function trains and logs its own curve beside the total.
      await setCode(page, GOOD);
      await applyAndResume(page);
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="ppo-iteration"]')?.textContent ?? '0') >= 2,
        undefined,
        { timeout: ITER_TIMEOUT },
      );
      await page.click('[data-testid="ppo-pause"]');
      await page.waitForSelector('[data-testid="ppo-resume"]', { timeout: ITER_TIMEOUT });
      const mean = await page.textContent('[data-metric="rewards/format/mean"] [data-testid="chart-value"]');
      assert.ok(Number.isFinite(parseFloat(mean!)) && parseFloat(mean!) > 0, `rewards/format/mean shows ${mean}`);
      const score = await page.textContent('[data-metric="objective/scores"] [data-testid="chart-value"]');
      assert.ok(Number.isFinite(parseFloat(score!)));
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);

      // Reload: the code is kept (IndexedDB), and the saved run offers to resume with it.
      await page.waitForSelector('[data-testid="ppo-saved"]', { timeout: 30_000 });
      await page.reload();
      await page.waitForSelector('[data-testid="stage-train"]');
      await page.waitForSelector('[data-testid="resume-run"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      // The choice of reward is kept too.
      await page.waitForFunction(
        () => (document.querySelector('[data-testid="reward-kind"]') as HTMLSelectElement | null)?.value === 'function',
      );
      await page.waitForFunction(
        (code) =>
          (document.querySelector('[data-testid="reward-fn-code"]') as HTMLTextAreaElement | null)?.value === code,
        GOOD,
      );
      await page.click('[data-testid="resume-run"]');
      await page.waitForSelector('[data-testid="ppo-resume"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="ppo-step"]');
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="ppo-iteration"]')?.textContent ?? '0') >= 3,
        undefined,
        { timeout: ITER_TIMEOUT },
      );
      assert.equal(await page.$('[data-testid="ppo-error"]'), null);
    } finally {
      await app.close();
    }
  });

  it('Test on samples: scores or the error; the code reaches no network or storage; eval only in the reward worker', async () => {
    const app = await openApp(`/?${TINY}#/train`);
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.selectOption('[data-testid="reward-kind"]', 'function');
      // A syntax error names its line.
      await setCode(
        page,
        'function reward(prompts, completions) {\n  const a = ;\n  return completions.map(() => 0);\n}',
      );
      await page.click('[data-testid="reward-fn-test"]');
      await page.waitForSelector('[data-testid="reward-fn-test-error"]', { timeout: MODEL_TIMEOUT });
      assert.match(
        (await page.textContent('[data-testid="reward-fn-test-error"]'))!,
        /^Reward function "format", line 2: SyntaxError: Unexpected token ';'/,
      );
      // The sandbox: no fetch, IndexedDB, sockets, caches or workers, by any route; eval works there.
      await setCode(page, SNOOP);
      await page.click('[data-testid="reward-fn-test"]');
      await page.waitForSelector('[data-testid="reward-fn-test-result"]', { timeout: MODEL_TIMEOUT });
      const totals = await page.$$eval('[data-testid="reward-fn-test-total"]', (els) => els.map((e) => e.textContent));
      assert.deepEqual(totals, ['1.000', '1.000', '1.000', '1.000']);
      assert.equal(await page.$('[data-testid="reward-fn-test-error"]'), null);
      // Eval is allowed in the reward worker only: its script has its own policy, the page keeps its own.
      const page2 = await page.evaluate(
        () =>
          new Promise<string>((resolve) =>
            setTimeout(() => {
              try {
                resolve(String((0, eval)('1 + 1')));
              } catch (e) {
                resolve((e as Error).name);
              }
            }),
          ),
      );
      assert.equal(page2, 'EvalError', 'the page refuses eval');
      const worker = readdirSync(join(OUT_DIR, 'assets')).find((f) => /^reward-fn\.worker-.*\.js$/.test(f));
      assert.ok(worker, 'the build has the reward worker');
      const policy = async (path: string) =>
        (await fetch(app.origin + path)).headers.get('content-security-policy') ?? '';
      const [doc, engine, rewardWorker] = await Promise.all([
        policy('/'),
        policy(`/assets/${readdirSync(join(OUT_DIR, 'assets')).find((f) => /^engine\.worker-.*\.js$/.test(f))}`),
        policy(`/assets/${worker}`),
      ]);
      assert.doesNotMatch(doc, /'unsafe-eval'/);
      assert.doesNotMatch(engine, /'unsafe-eval'/);
      assert.match(rewardWorker, /script-src 'self' 'unsafe-eval'/);
      assert.match(rewardWorker, /connect-src 'none'/);
      // Two functions with weights: the total is the weighted sum.
      await page.selectOption('[data-testid="reward-fn-add-which"]', 'length');
      await page.click('[data-testid="reward-fn-add"]');
      await page.fill('[data-testid="reward-fn-weight"] >> nth=1', '0');
      await page.fill('[data-testid="reward-fn-weight"] >> nth=0', '2');
      await page.click('[data-testid="reward-fn-test"]');
      await page.waitForSelector('[data-testid="reward-fn-test-result"]', { timeout: MODEL_TIMEOUT });
      const totals2 = await page.$$eval('[data-testid="reward-fn-test-total"]', (els) => els.map((e) => e.textContent));
      assert.deepEqual(totals2, ['2.000', '2.000', '2.000', '2.000']);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });

  it("a shared link's code is shown, not used until accepted; it trains with the engine on the main thread", async () => {
    const specs = [{ name: 'bang', code: GOOD, weight: 1 }];
    const link = encodeCode(JSON.stringify(specs));
    const app = await openApp(`/?${TINY}&engine=main&rewardfn=${link}#/train`);
    const { page } = app;
    try {
      await page.waitForSelector('[data-testid="reward-fn-link"]', { timeout: MODEL_TIMEOUT });
      assert.equal((await page.textContent('[data-testid="reward-fn-link-code"]'))!, GOOD);
      assert.equal(await page.inputValue('[data-testid="reward-fn-name"]'), 'format', 'not used yet');
      await page.click('[data-testid="reward-fn-link-use"]');
      await page.waitForSelector('[data-testid="reward-fn-link"]', { state: 'detached' });
      assert.equal(await page.inputValue('[data-testid="reward-fn-name"]'), 'bang');
      assert.equal(await page.inputValue('[data-testid="reward-fn-code"]'), GOOD);
      await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.click('[data-testid="ppo-start"]');
      await page.waitForSelector('[data-metric="rewards/bang/mean"] [data-testid="chart-value"]:not(:empty)', {
        timeout: ITER_TIMEOUT,
      });
      await page.click('[data-testid="ppo-pause"]');
      await page.waitForSelector('[data-testid="ppo-resume"]', { timeout: ITER_TIMEOUT });
      assert.equal(await page.$('[data-testid="ppo-error"]'), null);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
  it('Copy link carries the code; the reopened link offers it; the panel passes axe', async () => {
    const perms = { context: { permissions: ['clipboard-read', 'clipboard-write'] } };
    const a = await openApp(`/?${TINY}#/train`, perms);
    let link: string;
    try {
      const { page } = a;
      await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])', { timeout: MODEL_TIMEOUT });
      await page.selectOption('[data-testid="reward-kind"]', 'function');
      await page.fill('[data-testid="reward-fn-name"]', 'longer');
      await setCode(page, GOOD);
      await page.click('[data-testid="reward-fn-test"]');
      await page.waitForSelector('[data-testid="reward-fn-test-result"]', { timeout: MODEL_TIMEOUT });
      assert.deepEqual(await axeViolations(page), []);
      await page.click('[data-testid="copy-link"]');
      await page.waitForFunction(
        () =>
          document.querySelector('[data-testid="copy-status"]')?.textContent === 'Link copied' ||
          document.querySelector('[data-testid="share-url"]'),
      );
      link = (await page.locator('[data-testid="share-url"]').count())
        ? await page.inputValue('[data-testid="share-url"]')
        : await page.evaluate(() => navigator.clipboard.readText());
      assert.match(link, /[?&]rewardfn=[A-Za-z0-9_-]+(&|#|$)/);
    } finally {
      await a.close();
    }
    const b = await openApp(link.slice(new URL(link).origin.length), perms);
    try {
      const { page } = b;
      await page.waitForSelector('[data-testid="reward-fn-link"]', { timeout: MODEL_TIMEOUT });
      assert.equal(await page.textContent('[data-testid="reward-fn-link-code"]'), GOOD);
      assert.match((await page.textContent('[data-testid="reward-fn-link"]'))!, /longer \(weight 1\)/);
      assert.deepEqual(await axeViolations(page), []);
      assert.deepEqual(b.errors, []);
    } finally {
      await b.close();
    }
  });
});
