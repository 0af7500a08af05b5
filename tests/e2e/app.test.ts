import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { openApp, waitForBackend } from './harness';

async function selectBackend(page: Page, name: string): Promise<string> {
  await page.selectOption('[data-testid="backend-select"]', name);
  await page.waitForFunction(
    (n) => document.querySelector('[data-testid="backend-name"]')?.textContent?.trim() === n,
    name,
    { timeout: 90_000 },
  );
  return waitForBackend(page);
}

async function probeValues(page: Page): Promise<number[]> {
  const backend = (await page.textContent('[data-testid="backend-name"]'))!.trim();
  await page.click('text=Run a probe computation');
  const sel = `[data-testid="probe-values"][data-backend="${backend}"]`;
  const attr = await page.getAttribute(sel, 'data-values', { timeout: 60_000 });
  return JSON.parse(attr!) as number[];
}

function assertClose(a: number[], b: number[], tol: number) {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `value ${i}: ${a[i]} vs ${b[i]}`);
}

describe('app shell', () => {
  it('loads with no console errors, starts the worker, and shows wasm on a machine with no GPU', async () => {
    const app = await openApp('/');
    try {
      assert.equal(await waitForBackend(app.page), 'wasm');
      assert.match((await app.page.textContent('[data-testid="backend-adapter"]'))!, /WebAssembly SIMD/);
      assert.equal(await app.page.locator('[data-testid="engine-mode"]').count(), 0, 'engine should run in the worker');
      assert.equal(
        await app.page.evaluate(
          () => (globalThis as unknown as { rlhf: { engine: { mode: string } } }).rlhf.engine.mode,
        ),
        'worker',
      );
      // Every stage is reachable from the navigation.
      for (const stage of ['feedback', 'reward', 'train', 'runs', 'data', 'model', 'start']) {
        await app.page.click(`nav a[href="#/${stage}"]`);
        await app.page.waitForSelector(`[data-testid="stage-${stage}"]`);
      }
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });

  it('forced webgpu (software adapter) computes the same numbers as cpu, and switching at run time works', async () => {
    const app = await openApp('/?backend=webgpu#/model');
    try {
      assert.equal(await waitForBackend(app.page), 'webgpu');
      const gpu = await probeValues(app.page);
      assert.equal(await selectBackend(app.page, 'cpu'), 'cpu');
      const cpu = await probeValues(app.page);
      assertClose(gpu, cpu, 1e-4);
      assert.equal(await selectBackend(app.page, 'wasm'), 'wasm');
      assertClose(await probeValues(app.page), cpu, 1e-5);
      // The forced choice is remembered.
      assert.equal(await app.page.evaluate(() => localStorage.getItem('rlhf-playground.backend')), 'wasm');
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });

  it('an unknown ?backend= value gives a notice and the automatic choice', async () => {
    const app = await openApp('/?backend=%3Cscript%3Ealert(1)%3C/script%3E');
    try {
      assert.equal(await waitForBackend(app.page), 'wasm');
      const notice = await app.page.textContent('[data-testid="notice"]');
      assert.match(notice!, /Unknown backend "<script>alert\(1\)<\/script>"/);
      assert.equal(await app.page.locator('script:text("alert")').count(), 0);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('a long job reports progress across the worker boundary and can be cancelled with a named error', async () => {
    const app = await openApp('/');
    try {
      const result = await app.page.evaluate(async () => {
        const engine = (
          globalThis as unknown as { rlhf: { engine: { engine: import('../../src/lib/engine/types').Engine } } }
        ).rlhf.engine.engine;
        const seen: number[] = [];
        const done = engine.busyJob('job-1', 100_000, (p) => {
          seen.push(p.step);
          if (p.step === 5) void engine.cancel('job-1');
        });
        try {
          await done;
          return { name: 'none', seen: seen.length };
        } catch (e) {
          return { name: (e as Error).name, message: (e as Error).message, seen: seen.length };
        }
      });
      assert.equal(result.name, 'JobCancelledError');
      assert.ok(result.seen >= 5 && result.seen < 1000, `progress steps seen: ${result.seen}`);
    } finally {
      await app.close();
    }
  });

  it('a lost WebGPU device fails the running job with DeviceLostError and moves to the next backend', async () => {
    const app = await openApp('/?backend=webgpu#/model');
    try {
      assert.equal(await waitForBackend(app.page), 'webgpu');
      const result = await app.page.evaluate(async () => {
        const { engine, testHooks } = (
          globalThis as unknown as {
            rlhf: {
              engine: {
                engine: import('../../src/lib/engine/types').Engine;
                testHooks: import('../../src/lib/engine/types').EngineTestHooks;
              };
            };
          }
        ).rlhf.engine;
        let lost = false;
        const job = engine.busyJob('job-gpu', 100_000, (p) => {
          if (p.step === 3 && !lost) {
            lost = true;
            void testHooks.debugLoseDevice();
          }
        });
        try {
          await job;
          return 'finished';
        } catch (e) {
          return (e as Error).name;
        }
      });
      assert.equal(result, 'DeviceLostError');
      const next = await app.page.waitForFunction(
        () => {
          const t = document.querySelector('[data-testid="backend-name"]')?.textContent?.trim();
          return t && t !== 'webgpu' && !t.includes('…') ? t : null;
        },
        undefined,
        { timeout: 60_000 },
      );
      assert.equal(await next.jsonValue(), 'wasm');
      assert.match((await app.page.locator('[data-testid="notice"]').allTextContents()).join('\n'), /device was lost/);
      // The engine still computes on the new backend.
      assert.equal((await probeValues(app.page)).length, 16);
    } finally {
      await app.close();
    }
  });

  it('runs the engine in-thread when asked (the fallback when no worker can start) and says so', async () => {
    const app = await openApp('/?engine=main#/model');
    try {
      assert.equal(await waitForBackend(app.page), 'wasm');
      assert.match((await app.page.textContent('[data-testid="engine-mode"]'))!, /main thread/);
      assert.match(
        (await app.page.locator('[data-testid="notice"]').allTextContents()).join('\n'),
        /runs on the page itself/,
      );
      assert.equal((await probeValues(app.page)).length, 16);
    } finally {
      await app.close();
    }
  });
});
