/**
 * Shared end-to-end context: the built app served by `vite preview` on
 * 127.0.0.1, and one headless Chromium. Every page routes all its requests;
 * a request to any other origin is aborted and recorded, and fails the test.
 */
import {
  chromium,
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  type ConsoleMessage,
  type Page,
} from 'playwright-core';
import { preview, type PreviewServer } from 'vite';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CHROMIUM_ARGS, findChromium } from './browser';

function newestMtime(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let m = s.mtimeMs;
  for (const f of readdirSync(path)) m = Math.max(m, newestMtime(join(path, f)));
  return m;
}

/**
 * Where the app is built and served from. `E2E_OUT_DIR` lets several people (or agents) run
 * e2e tests in one checkout at once without rebuilding each other's `dist/` mid-run.
 */
export const OUT_DIR = process.env.E2E_OUT_DIR ?? 'dist';

/** Build the app when `OUT_DIR` is missing or older than its sources. */
export function ensureBuilt(): void {
  const built = existsSync(join(OUT_DIR, 'index.html')) ? statSync(join(OUT_DIR, 'index.html')).mtimeMs : 0;
  const sources = Math.max(
    ...['src', 'public', 'static', 'index.html', 'vite.config.ts'].filter(existsSync).map(newestMtime),
  );
  if (built < sources) {
    console.log('Building the app…');
    execFileSync('npx', ['vite', 'build', '--logLevel', 'warn', '--outDir', OUT_DIR, '--emptyOutDir'], {
      stdio: 'inherit',
    });
  }
}

interface Shared {
  server: PreviewServer;
  browser: Browser;
  origin: string;
}

let shared: Promise<Shared> | null = null;

async function start(): Promise<Shared> {
  const server = await preview({
    logLevel: 'warn',
    build: { outDir: OUT_DIR },
    preview: { host: '127.0.0.1', port: 0, strictPort: false, open: false },
  });
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('vite preview did not report a URL');
  const browser = await chromium.launch({ executablePath: findChromium(), args: CHROMIUM_ARGS, headless: true });
  return { server, browser, origin: new URL(url).origin };
}

export function getShared(): Promise<Shared> {
  shared ??= start();
  return shared;
}

export async function closeShared(): Promise<void> {
  if (!shared) return;
  const s = await shared;
  await s.browser.close();
  await s.server.close();
  shared = null;
}

export interface AppPage {
  page: Page;
  context: BrowserContext;
  origin: string;
  /** Console errors and uncaught exceptions, from the page and its workers. */
  errors: string[];
  /** Requests that tried to leave the app's origin. */
  foreignRequests: string[];
  close(): Promise<void>;
}

/** A fresh browser context (own storage) with the app opened at `path`. */
export async function openApp(
  path = '/',
  opts: {
    waitForBackend?: boolean;
    /**
     * Route (and block) foreign requests: on by default. Playwright's routing bypasses service
     * workers, so a test of the offline cache turns it off; foreign requests are still recorded.
     */
    route?: boolean;
    /** Another server than the shared one (e.g. one the test stops to go offline). */
    origin?: string;
    /** Extra context options (permissions, viewport…). */
    context?: BrowserContextOptions;
  } = {},
): Promise<AppPage> {
  const shared = await getShared();
  const { browser } = shared;
  const origin = opts.origin ?? shared.origin;
  // With routing on, a service worker would only download the precache list for nothing
  // (Playwright's routing bypasses it), so it is blocked; the offline test turns routing off.
  const context = await browser.newContext({
    serviceWorkers: opts.route === false ? 'allow' : 'block',
    ...opts.context,
  });
  const errors: string[] = [];
  const foreignRequests: string[] = [];
  if (opts.route !== false)
    await context.route('**/*', (route) => {
      const u = route.request().url();
      if (new URL(u).origin !== origin) {
        foreignRequests.push(u);
        return route.abort('blockedbyclient');
      }
      return route.continue();
    });
  const page = await context.newPage();
  const onConsole = (m: ConsoleMessage) => {
    if (m.type() === 'error') errors.push(m.text());
  };
  page.on('console', onConsole);
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('worker', (w) => w.on('console', onConsole));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:') && !foreignRequests.includes(u)) {
      foreignRequests.push(u);
    }
  });
  await page.goto(origin + path);
  if (opts.waitForBackend !== false) await waitForBackend(page);
  return { page, context, origin, errors, foreignRequests, close: () => context.close() };
}

/** Wait until the header shows an active backend; returns its name. */
export async function waitForBackend(page: Page, timeout = 90_000): Promise<string> {
  await page.waitForFunction(
    () => {
      const t = document.querySelector('[data-testid="backend-name"]')?.textContent ?? '';
      return t !== '' && !t.includes('…') && t !== 'no backend';
    },
    undefined,
    { timeout },
  );
  return (await page.textContent('[data-testid="backend-name"]'))!.trim();
}

/**
 * From any page: open the Feedback page, create the scripted sentiment annotator "sentiment-bot"
 * and let it label `n` pairs of 16-token samples in one action; resolves when the batch is done.
 */
export async function labelWithSentimentBot(page: Page, n: number): Promise<void> {
  await page.click('nav a[href="#/feedback"]');
  await page.getAttribute('[data-testid="pair"]', 'data-item', { timeout: 120_000 });
  await page.getByLabel('Max new tokens').fill('16');
  await page.click('[data-testid="studio-status"]');
  await page.click('[data-testid="add-labeller"]');
  await page.selectOption('[data-testid="labeller-kind"]', 'sentiment');
  await page.fill('[data-testid="annotator-name"]', 'sentiment-bot');
  await page.click('[data-testid="create-annotator"]');
  await page.waitForSelector('[data-testid="auto-label"]');
  await page.fill('[data-testid="auto-n"]', String(n));
  await page.click('[data-testid="auto-start"]');
  await page.waitForSelector('[data-testid="auto-status"][data-running="false"]', { timeout: 300_000 });
}
