/**
 * End-to-end tests in a real Chromium against the built app.
 * `npm run test:e2e` builds the app first when `dist/` is missing or older than the sources.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { closeShared } from './harness';

function newestMtime(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let m = s.mtimeMs;
  for (const f of readdirSync(path)) m = Math.max(m, newestMtime(join(path, f)));
  return m;
}

const built = existsSync('dist/index.html') ? statSync('dist/index.html').mtimeMs : 0;
const sources = Math.max(
  ...['src', 'public', 'static', 'index.html', 'vite.config.ts'].filter(existsSync).map(newestMtime),
);
if (built < sources) {
  console.log('Building the app for the end-to-end tests…');
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], { stdio: 'inherit' });
}

after(closeShared);

const files = (
  process.argv.slice(2).length ? process.argv.slice(2) : readdirSync('tests/e2e').filter((f) => f.endsWith('.test.ts'))
)
  .map((f) => (f.includes('/') ? f : `tests/e2e/${f}`))
  .sort();
for (const f of files) await import(join(process.cwd(), f));
