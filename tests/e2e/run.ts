/**
 * End-to-end tests in a real Chromium against the built app.
 * `npm run test:e2e` builds the app first when `dist/` is missing or older than the sources.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { closeShared, ensureBuilt } from './harness';

ensureBuilt();

after(closeShared);

const files = (
  process.argv.slice(2).length ? process.argv.slice(2) : readdirSync('tests/e2e').filter((f) => f.endsWith('.test.ts'))
)
  .map((f) => (f.includes('/') ? f : `tests/e2e/${f}`))
  .sort();
for (const f of files) await import(join(process.cwd(), f));
