/**
 * TF.js wasm on threads in the built (minified) app (issue 18, item 1): the servers send COOP +
 * COEP, so the page and the engine worker are cross-origin isolated, and the wasm backend's pool
 * runs `min(navigator.hardwareConcurrency, 8)` threads, which the header shows. A training step
 * gives the same losses on N threads as on one (`?threads=1`), and cached sampling (its decode
 * steps narrowed to one thread of the pool, src/lib/model/wasm-threads.ts) the same tokens. Without the headers the app falls
 * back to one thread and says why. On a static host that sends no headers at all, the service
 * worker adds them, so the second visit is isolated.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { OUT_DIR, openApp, waitForBackend } from './harness';

const MODEL_TIMEOUT = 120_000;

interface Engine {
  rlhf: {
    engine: {
      info: { name: string; threads?: number; adapter: string };
      engine: {
        bench(id: string, r: unknown): Promise<{ rows: { name: string; losses?: number[] }[] }>;
        generate(id: string, r: unknown): Promise<{ samples: { ids: number[]; logprobs: number[] }[] }>;
      };
    };
  };
}

/** What the page and its engine worker say about isolation and threads. */
async function threadState(page: Page) {
  const worker = page.workers().find((w) => w.url().includes('engine.worker'));
  assert.ok(worker, `the engine worker runs (${page.workers().map((w) => w.url())})`);
  return {
    page: await page.evaluate(() => crossOriginIsolated),
    worker: (await worker.evaluate('crossOriginIsolated')) as boolean,
    cores: await page.evaluate(() => navigator.hardwareConcurrency),
    threads: await page.evaluate(() => (globalThis as unknown as Engine).rlhf.engine.info.threads),
    adapter: ((await page.textContent('[data-testid="backend-adapter"]')) ?? '').trim(),
  };
}

/** Losses of 3 training steps (B2 × T) of the bundled model, in the engine worker. */
async function trainLosses(page: Page): Promise<number[]> {
  await page.waitForSelector('[data-testid="model-card"]', { timeout: MODEL_TIMEOUT });
  const r = await page.evaluate((req) => (globalThis as unknown as Engine).rlhf.engine.engine.bench('threads', req), {
    what: ['train'],
    warmup: 1,
    repeats: 2,
    trainBatch: 2,
  });
  return r.rows.find((x) => x.name.startsWith('train step'))!.losses!;
}

/**
 * Cached sampling of 4 prompts × 12 tokens in the engine worker (the decode steps run on one
 * thread of the pool, wasm-threads.ts), and the names of the rows of a short sampling bench.
 */
async function sampleAndRows(page: Page): Promise<{ ids: number[][]; logprobs: number[][]; rows: string[] }> {
  await page.waitForSelector('[data-testid="model-card"]', { timeout: MODEL_TIMEOUT });
  return page.evaluate(async () => {
    const e = (globalThis as unknown as Engine).rlhf.engine.engine;
    const r = await e.generate('threads-sample', {
      prompts: ['The movie was', 'I loved', 'The food was', 'This book'],
      maxNewTokens: 12,
      temperature: 1,
      topK: 0,
      topP: 1,
      seed: 5,
      useCache: true,
    });
    const b = await e.bench('threads-sample-bench', {
      what: ['sample'],
      warmup: 0,
      repeats: 1,
      newTokens: 4,
      batches: [2],
    });
    return {
      ids: r.samples.map((x) => x.ids),
      logprobs: r.samples.map((x) => x.logprobs),
      rows: b.rows.map((x) => x.name),
    };
  });
}

/** A static file server that sends no headers beyond the content type (a plain static host). */
function staticHost(): Promise<{ server: Server; origin: string }> {
  const types: Record<string, string> = {
    '.html': 'text/html',
    '.js': 'text/javascript',
    '.css': 'text/css',
    '.json': 'application/json',
    '.wasm': 'application/wasm',
  };
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url!, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    let file = join(OUT_DIR, path);
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address() as { port: number };
      resolve({ server, origin: `http://127.0.0.1:${a.port}` });
    }),
  );
}

describe('wasm threads (cross-origin isolation)', () => {
  it('runs the threaded build in the worker, shows the thread count, and trains to the same numbers as 1 thread', async () => {
    const many = await openApp('/?backend=wasm#/model');
    const one = await openApp('/?backend=wasm&threads=1#/model');
    try {
      const s = await threadState(many.page);
      assert.equal(s.page, true, 'the page is cross-origin isolated');
      assert.equal(s.worker, true, 'the engine worker is cross-origin isolated');
      const expected = Math.min(s.cores, 8);
      assert.equal(s.threads, expected, `threads = min(hardwareConcurrency ${s.cores}, 8)`);
      assert.match(s.adapter, new RegExp(`WebAssembly SIMD, ${expected} thread${expected > 1 ? 's' : ''}`));
      if (s.cores > 1) assert.ok(s.threads! > 1, 'more than one thread on a multi-core machine');

      const s1 = await threadState(one.page);
      assert.equal(s1.threads, 1);
      assert.match(s1.adapter, /WebAssembly SIMD, 1 thread \(one thread asked for\)/);

      // Decoding narrows the pool to one thread and widens it again: the same tokens as on one
      // thread, and only the N-thread app has the pool switch (its bench adds the all-threads A/B).
      const [sa, sb] = [await sampleAndRows(many.page), await sampleAndRows(one.page)];
      assert.deepEqual(sa.ids, sb.ids, 'the same tokens on N threads as on one');
      sa.logprobs.flat().forEach((lp, i) => assert.ok(Math.abs(lp - sb.logprobs.flat()[i]) < 1e-4, `logprob ${i}`));
      if (s.threads! > 1) assert.ok(sa.rows.includes('sample b2 cache, all threads'), `rows: ${sa.rows}`);
      assert.ok(!sb.rows.includes('sample b2 cache, all threads'), `rows: ${sb.rows}`);

      const [a, b] = [await trainLosses(many.page), await trainLosses(one.page)];
      assert.equal(a.length, 3);
      for (let i = 0; i < a.length; i++)
        assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * Math.abs(b[i]), `step ${i}: ${a[i]} (N threads) vs ${b[i]} (1)`);
      assert.ok(a[2] < a[0], `the loss falls (${a.join(', ')})`);
      assert.deepEqual(many.errors, []);
      assert.deepEqual(one.errors, []);
    } finally {
      await many.close();
      await one.close();
    }
  });

  it('without COOP/COEP it runs on one thread and the header says why', async () => {
    const app = await openApp('/?backend=wasm#/model', { waitForBackend: false });
    try {
      // Same app, the document served without the isolation headers.
      await app.context.route(`${app.origin}/**`, async (route) => {
        if (route.request().resourceType() !== 'document') return route.fallback();
        const res = await route.fetch();
        const headers = { ...res.headers() };
        delete headers['cross-origin-opener-policy'];
        delete headers['cross-origin-embedder-policy'];
        return route.fulfill({ response: res, headers });
      });
      await app.page.reload();
      assert.equal(await waitForBackend(app.page), 'wasm');
      const s = await threadState(app.page);
      assert.equal(s.page, false);
      assert.equal(s.threads, 1);
      assert.match(s.adapter, /WebAssembly SIMD, 1 thread \(not cross-origin isolated\)/);
      assert.equal((await trainLosses(app.page)).length, 3);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('on a static host without headers, the service worker isolates the app from the second visit', async () => {
    const { server, origin } = await staticHost();
    const app = await openApp('/?backend=wasm#/model', { route: false, origin });
    try {
      const { page } = app;
      assert.equal(await page.evaluate(() => crossOriginIsolated), false, 'the first visit comes from the host');
      await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
      await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: 30_000 });
      await page.reload();
      assert.equal(await waitForBackend(page), 'wasm');
      const s = await threadState(page);
      assert.equal(s.page, true, 'isolated through the service worker');
      assert.equal(s.worker, true);
      assert.equal(s.threads, Math.min(s.cores, 8));
      assert.equal((await trainLosses(page)).length, 3);
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
      await new Promise((r) => server.close(r));
    }
  });
});
