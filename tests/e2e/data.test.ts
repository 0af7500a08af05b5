/**
 * Data page: native export → import into a fresh browser gives equal records;
 * every kind of bad file is refused with its message and changes nothing;
 * user text (HTML, script) is shown as text; edit, delete and undo; 10,000 records
 * are paged, never all rendered.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { openApp } from './harness';

const FIX = 'tests/fixtures/import';

const SAMPLING = { temperature: 0.8, topK: 40, topP: 0.95, maxNewTokens: 16 };

/** Valid native lines of every mode, plus a demonstration. */
function nativeFile(n: number, prefix = 'rec'): string {
  const lines: unknown[] = [{ format: 'rlhf-playground', version: 1 }];
  const labels = ['A', 'B', 'tie', 'both-bad', 'skip'];
  for (let i = 0; i < n; i++) {
    const base = {
      id: `${prefix}-${i}`,
      schemaVersion: 1,
      prompt: `Prompt number ${i}:`,
      modelId: 'tiny-gpt',
      checkpointId: 'base',
      sampling: SAMPLING,
      seed: i,
      annotator: i % 3 === 0 ? { name: 'ada', kind: 'human' } : { name: 'bob', kind: 'human' },
      createdAt: 1_700_000_000_000 + i * 1000,
      updatedAt: 1_700_000_000_000 + i * 1000,
    };
    const r = (k: number) => Array.from({ length: k }, (_, j) => ({ text: ` answer ${i}.${j}`, tokenIds: [j + 1, 7] }));
    const m = i % 8;
    if (m < 5) lines.push({ ...base, responses: r(2), mode: 'pairwise', label: labels[m] });
    else if (m === 5) lines.push({ ...base, responses: r(3), mode: 'ranking', label: { order: [2, 0, 1] } });
    else if (m === 6) {
      const flags = [
        { offTopic: false, repetitive: true, offensive: false },
        { offTopic: false, repetitive: false, offensive: false },
      ];
      lines.push({ ...base, responses: r(2), mode: 'rating', label: { ratings: [2, 6], flags } });
    } else
      lines.push({ ...base, responses: r(1), mode: 'edit', label: { edited: ` edited ${i}`, editedTokenIds: [] } });
  }
  lines.push({ id: `${prefix}-demo`, prompt: 'Write:', completion: ' a demo.', source: 'written', createdAt: 1 });
  return lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
}

async function gotoData(page: Page): Promise<void> {
  await page.click('nav a[href="#/data"]');
  await page.waitForSelector('[data-testid="stage-data"]');
}

async function count(page: Page, id = 'count-all'): Promise<number> {
  return Number(await page.textContent(`[data-testid="${id}"]`));
}

async function waitCount(page: Page, n: number, id = 'count-all', timeout = 30_000): Promise<void> {
  await page.waitForFunction(
    ([sel, want]) => document.querySelector(`[data-testid="${sel}"]`)?.textContent === String(want),
    [id, n] as const,
    { timeout },
  );
}

/** Pick a file in the import panel and wait for its check. */
async function pick(page: Page, name: string, buffer: Buffer): Promise<void> {
  await page.setInputFiles('[data-testid="import-file"]', { name, mimeType: 'application/jsonl', buffer });
  await page.waitForSelector('[data-testid="import-preview"]', { timeout: 60_000 });
}

async function importOk(page: Page, name: string, buffer: Buffer): Promise<void> {
  await pick(page, name, buffer);
  await page.click('[data-testid="import-commit"]');
  await page.waitForSelector('[data-testid="import-preview"]', { state: 'detached', timeout: 60_000 });
}

/** Everything the page shows about every record: counts, and each row's text with its details open. */
async function snapshot(page: Page): Promise<{ counts: string; rows: string[] }> {
  const counts = (await page.textContent('[data-testid="counts"]'))!.replace(/\s+/g, ' ');
  const rows: string[] = [];
  for (;;) {
    const items = page.locator('[data-testid="record"]');
    const n = await items.count();
    for (let i = 0; i < n; i++) {
      const row = items.nth(i);
      await row.locator('button.expand').click();
      rows.push((await row.textContent())!.replace(/\s+/g, ' '));
    }
    const next = page.locator('[data-testid="next-page"]');
    if ((await next.count()) === 0 || (await next.isDisabled())) break;
    const info = await page.textContent('[data-testid="page-info"]');
    const firstId = await items.first().getAttribute('data-id');
    await next.click();
    // Wait for the rows themselves, not only the page label: they can render a tick later.
    await page.waitForFunction(
      ([oldInfo, oldFirst]) =>
        document.querySelector('[data-testid="page-info"]')?.textContent !== oldInfo &&
        document.querySelector('[data-testid="record"]')?.getAttribute('data-id') !== oldFirst,
      [info, firstId] as const,
    );
  }
  return { counts, rows };
}

async function exportNative(page: Page): Promise<string> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-native"]')]);
  assert.match(download.suggestedFilename(), /^rlhf-playground-.*\.jsonl$/);
  const path = await download.path();
  return readFileSync(path, 'utf8');
}

describe('data page', () => {
  it('native export, then import into a fresh browser, gives equal records', async () => {
    const one = await openApp('/#/data', { waitForBackend: false });
    const two = await openApp('/#/data', { waitForBackend: false });
    try {
      await importOk(one.page, 'seed.jsonl', Buffer.from(nativeFile(40)));
      await waitCount(one.page, 40);
      assert.equal(await count(one.page, 'count-demos'), 1);

      // Edit a label, delete with undo: the page and the counts follow.
      const pairwise = one.page.locator('[data-testid="record"][data-mode="pairwise"]').first();
      const id = await pairwise.getAttribute('data-id');
      await pairwise.locator('[data-testid="record-edit"]').click();
      await pairwise.locator('[data-testid="record-label-select"]').selectOption('B');
      await pairwise.locator('[data-testid="record-save"]').click();
      await one.page.waitForFunction(
        (rid) => document.querySelector(`[data-id="${rid}"] [data-testid="record-label"]`)?.textContent === 'B better',
        id,
      );
      const bBefore = await count(one.page, 'count-label-B');
      await one.page.locator(`[data-id="${id}"] [data-testid="record-delete"]`).click();
      await waitCount(one.page, 39);
      assert.equal(await count(one.page, 'count-label-B'), bBefore - 1);
      await one.page.click('[data-testid="undo-delete"]');
      await waitCount(one.page, 40);
      assert.equal(await count(one.page, 'count-label-B'), bBefore);

      const exported = await exportNative(one.page);
      const lines = exported.trim().split('\n');
      assert.equal(lines.length, 1 + 40 + 1);
      assert.equal(JSON.parse(lines[0]).format, 'rlhf-playground');

      await importOk(two.page, 'export.jsonl', Buffer.from(exported));
      await waitCount(two.page, 40);
      assert.deepEqual(await snapshot(two.page), await snapshot(one.page));
      // And the data itself: the second browser exports the same lines (header time aside).
      const again = await exportNative(two.page);
      assert.deepEqual(again.trim().split('\n').slice(1), lines.slice(1));

      // Importing the same file again changes nothing: every id is already saved.
      await pick(two.page, 'export.jsonl', Buffer.from(exported));
      assert.match((await two.page.textContent('[data-testid="import-errors"]'))!, /line 2 .*already saved/);
      assert.equal(await two.page.locator('[data-testid="import-commit"]').count(), 0);
      for (const app of [one, two]) {
        assert.deepEqual(app.errors, []);
        assert.deepEqual(app.foreignRequests, []);
      }
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('refuses each bad file with its message and leaves the data unchanged; HTML stays text', async () => {
    const app = await openApp('/#/data', { waitForBackend: false });
    const { page } = app;
    try {
      await importOk(page, 'seed.jsonl', Buffer.from(nativeFile(3, 'seed')));
      await waitCount(page, 3);

      const bigLine = JSON.stringify({ prompt: 'x'.repeat(10 * 1024 * 1024) });
      const binary = Buffer.alloc(4096);
      let s = 12345;
      for (let i = 0; i < binary.length; i++) binary[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
      const cases: { name: string; buffer: Buffer; message: RegExp }[] = [
        {
          name: 'invalid-json.jsonl',
          buffer: readFileSync(`${FIX}/invalid-json.jsonl`),
          message: /line 2 invalid JSON/,
        },
        {
          name: 'wrong-types.jsonl',
          buffer: readFileSync(`${FIX}/wrong-types.jsonl`),
          message: /line 2 "chosen" must be a string.*line 3 "prompt" must be a string/s,
        },
        {
          name: 'missing-fields.jsonl',
          buffer: readFileSync(`${FIX}/missing-fields.jsonl`),
          message: /line 2 missing "rejected".*line 3 missing "prompt"/s,
        },
        {
          name: 'empty-strings.jsonl',
          buffer: readFileSync(`${FIX}/empty-strings.jsonl`),
          message: /line 2 "prompt" is empty.*line 3 "chosen" is empty/s,
        },
        {
          name: 'duplicates.jsonl',
          buffer: readFileSync(`${FIX}/duplicates.jsonl`),
          message: /line 3 duplicate of line 1/,
        },
        {
          name: 'big-line.jsonl',
          buffer: Buffer.from(`{"prompt":"fine"}\n${bigLine}\n{"prompt":"also fine"}\n`),
          message: /line 2 line is longer than 1 MB/,
        },
      ];
      for (const c of cases) {
        await pick(page, c.name, c.buffer);
        assert.match((await page.textContent('[data-testid="import-errors"]'))!, c.message, c.name);
        assert.ok(await page.isVisible('[data-testid="import-blocked"]'), `${c.name}: says nothing was imported`);
        assert.equal(await page.locator('[data-testid="import-commit"]').count(), 0, c.name);
        await page.click('[data-testid="import-cancel"]');
        assert.equal(await count(page), 3, `${c.name} changed the data`);
      }

      // A binary file: not recognised, with the reason, and nothing to import.
      await pick(page, 'random.bin', binary);
      assert.match((await page.textContent('[data-testid="import-problem"]'))!, /line 1: .*(binary|UTF-8|NUL|JSON)/);
      assert.equal(await page.locator('[data-testid="import-commit"], [data-testid="import-valid"]').count(), 0);
      await page.click('[data-testid="import-cancel"]');
      assert.equal(await count(page), 3);

      // The explicit "import the valid lines" keeps the good lines only.
      await pick(page, 'invalid-json.jsonl', readFileSync(`${FIX}/invalid-json.jsonl`));
      await page.click('[data-testid="import-valid"]');
      await waitCount(page, 5);
      await page.waitForSelector('[data-testid="notice"]:has-text("1 bad line(s) left out")');

      // BOM and CRLF import fine, without a stray \r or BOM in the texts.
      const bomCrlf = Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]),
        Buffer.from(
          '{"prompt":"Windows line","chosen":" one.","rejected":" two."}\r\n{"prompt":"Second","chosen":" yes.","rejected":" no."}\r\n',
        ),
      ]);
      await pick(page, 'bom-crlf.jsonl', bomCrlf);
      assert.equal(await page.textContent('[data-testid="import-kind"]'), 'preference');
      await page.click('[data-testid="import-commit"]');
      await waitCount(page, 7);
      const prompts = await page.locator('[data-testid="record-prompt"]').allTextContents();
      assert.ok(prompts.includes('Windows line') && prompts.includes('Second'), prompts.join('|'));

      // HTML and script are imported as text and shown as text; nothing runs.
      await importOk(page, 'html-script.jsonl', readFileSync(`${FIX}/html-script.jsonl`));
      await waitCount(page, 9);
      await page.fill('[data-testid="search"]', '<script>');
      await page.waitForFunction(() => document.querySelector('[data-testid="list-total"]')?.textContent === '1');
      const row = page.locator('[data-testid="record"]').first();
      await row.locator('button.expand').click();
      assert.equal(
        await row.locator('[data-testid="record-prompt"]').textContent(),
        '<script>window.__pwned = 1</script>Hello',
      );
      const texts = await row.locator('[data-testid="record-response"]').allTextContents();
      assert.deepEqual(texts, [
        '<img src=x onerror="window.__pwned=2"> <b>bold</b>',
        '</span><script>window.__pwned=3</script>',
      ]);
      assert.equal(
        await page
          .locator('[data-testid="stage-data"] script, [data-testid="stage-data"] img, [data-testid="stage-data"] b')
          .count(),
        0,
      );
      assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned), undefined);

      // Filters: annotator and label.
      await page.fill('[data-testid="search"]', '');
      await page.selectOption('[data-testid="filter-annotator"]', 'imported');
      await page.waitForFunction(() => document.querySelector('[data-testid="list-total"]')?.textContent === '6');
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });

  it('the preview runs the import’s checks: a prompt too long for a prompt set is an error there, not after the click', async () => {
    const app = await openApp('/#/data', { waitForBackend: false });
    const { page } = app;
    try {
      await pick(page, 'long.jsonl', Buffer.from(JSON.stringify({ prompt: 'x'.repeat(2500) }) + '\n'));
      assert.equal(await page.textContent('[data-testid="import-kind"]'), 'prompt');
      assert.match(
        (await page.textContent('[data-testid="import-errors"]'))!,
        /line 1 "prompt" is 2500 characters long; at most 2000/,
      );
      assert.match((await page.textContent('[data-testid="import-summary"]'))!, /0 valid, 1 with errors/);
      assert.equal(await page.locator('[data-testid="import-commit"]').count(), 0, 'no "Import 1" on offer');
      assert.equal(await page.locator('[data-testid="import-valid"]').isDisabled(), true);

      // A good line beside it: only that one is offered, and importing it adds a set of one prompt.
      await page.click('[data-testid="import-cancel"]');
      const two = [{ prompt: 'The movie was' }, { prompt: 'y'.repeat(2001) }].map((r) => JSON.stringify(r)).join('\n');
      await pick(page, 'two.jsonl', Buffer.from(two));
      assert.match((await page.textContent('[data-testid="import-summary"]'))!, /1 valid, 1 with errors/);
      await page.click('[data-testid="import-valid"]');
      await page.waitForSelector('[data-testid="import-preview"]', { state: 'detached' });
      const notes = await page.locator('[data-testid="notice"]').allTextContents();
      assert.ok(
        notes.some((n) => /a prompt set “two” with 1 prompt\(s\).*1 bad line\(s\) left out\./.test(n)),
        notes.join(' | '),
      );
      for (const n of notes) assert.doesNotMatch(n, /\.\./, `no notice ends a sentence twice: ${n}`);

      // The Feedback studio's prompt import checks the same way and says so in one sentence.
      await page.click('nav a[href="#/feedback"]');
      const bad = { name: 'long.jsonl', mimeType: 'application/jsonl' };
      await page.setInputFiles('[data-testid="prompt-file"]', {
        ...bad,
        buffer: Buffer.from(JSON.stringify({ prompt: 'x'.repeat(2500) }) + '\n'),
      });
      await page.waitForFunction(() =>
        [...document.querySelectorAll('[data-testid="notice"]')].some((n) => n.textContent?.includes('long.jsonl')),
      );
      const studio = await page.locator('[data-testid="notice"]').allTextContents();
      assert.ok(
        studio.some((n) =>
          n.includes('long.jsonl was not imported: line 1: "prompt" is 2500 characters long; at most 2000.'),
        ),
        studio.join(' | '),
      );
      await page.setInputFiles('[data-testid="prompt-file"]', {
        name: 'set.json',
        mimeType: 'application/json',
        buffer: Buffer.from('{"name": "x", "prompts": ['),
      });
      await page.waitForFunction(() =>
        [...document.querySelectorAll('[data-testid="notice"]')].some((n) => n.textContent?.includes('set.json')),
      );
      for (const n of await page.locator('[data-testid="notice"]').allTextContents()) {
        assert.doesNotMatch(n, /\.\./, `no notice ends a sentence twice: ${n}`);
        if (n.includes('set.json'))
          assert.match(n, /set\.json: Prompt set is not valid JSON: .*[.!?] Nothing was imported\./);
      }
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });

  it('pages through 10,000 records without rendering them all', async () => {
    const app = await openApp('/#/data', { waitForBackend: false });
    const { page } = app;
    try {
      const t0 = Date.now();
      await importOk(page, 'big.jsonl', Buffer.from(nativeFile(10_000, 'big')));
      await waitCount(page, 10_000, 'count-all', 120_000);
      console.log(`  10,000 records imported in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      assert.equal(await page.locator('[data-testid="record"]').count(), 25);
      assert.equal(await page.textContent('[data-testid="page-info"]'), 'Page 1 of 400');
      const t1 = Date.now();
      await page.click('[data-testid="next-page"]');
      await page.waitForFunction(
        () => document.querySelector('[data-testid="page-info"]')?.textContent === 'Page 2 of 400',
      );
      const pageMs = Date.now() - t1;
      assert.ok(pageMs < 2000, `next page took ${pageMs} ms`);
      await page.click('[aria-label="Last page"]');
      await page.waitForFunction(
        () => document.querySelector('[data-testid="page-info"]')?.textContent === 'Page 400 of 400',
      );
      assert.equal(await page.locator('[data-testid="record"]').count(), 25);
      const t2 = Date.now();
      await page.fill('[data-testid="search"]', 'answer 9998.1');
      await page.waitForFunction(() => document.querySelector('[data-testid="list-total"]')?.textContent === '1');
      console.log(`  search over 10,000 records: ${Date.now() - t2} ms (200 ms of it is the typing pause)`);
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.foreignRequests, []);
    } finally {
      await app.close();
    }
  });
});
