/**
 * RLHF Playground service worker: offline after the first load.
 *
 * On install it caches the whole built app — the HTML, the scripts and styles, the TF.js
 * `.wasm` binaries and the bundled model (`models/tiny-gpt/*`) — listed in `PRECACHE`, which
 * the build writes in (vite.config.ts, plugin `precache-sw`; here in the source it is empty).
 * Pages are fetched from the network first (a new deployment shows at once) and fall back to
 * the cached `index.html`; every other file of the list is served from the cache. A new build
 * has a new version, so the browser installs the new worker, which drops the old cache.
 *
 * The pattern is the "cache, falling back to network" / "network falling back to cache" pair of
 * Jake Archibald's "The offline cookbook" (web.dev/articles/offline-cookbook).
 *
 * Every response it serves carries `Cross-Origin-Opener-Policy: same-origin` and
 * `Cross-Origin-Embedder-Policy: require-corp` (as vite.config.ts's servers send them), so the
 * app is cross-origin isolated, and TF.js wasm runs on threads, from the second visit on even on
 * a static host that cannot set headers (the idea of github.com/gzuidhof/coi-serviceworker).
 */
/* eslint-env serviceworker */

const PRECACHE = /* precache: */ { version: 'dev', files: [] }; /* :precache */
const PREFIX = 'rlhf-playground-';
const CACHE = PREFIX + PRECACHE.version;

/** Cross-origin isolation headers (vite.config.ts `ISOLATION_HEADERS`). */
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

/** The same response with the isolation headers; opaque and error responses cannot be copied. */
function isolated(res) {
  if (!res || res.status === 0 || res.type === 'opaque' || res.type === 'opaqueredirect') return res;
  const headers = new Headers(res.headers);
  for (const [k, v] of Object.entries(ISOLATION)) headers.set(k, v);
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

/** Absolute URL of a path relative to the app's base (where this file lives). */
const abs = (path) => new URL(path, self.registration.scope).href;

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(PRECACHE.files.map((f) => new Request(abs(f), { cache: 'reload' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key.startsWith(PREFIX) && key !== CACHE) await caches.delete(key);
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET' || new URL(req.url).origin !== self.location.origin) return;
  if (req.mode === 'navigate') {
    event.respondWith(
      fetch(req)
        .catch(async () => (await caches.match(abs('index.html'), { cacheName: CACHE })) ?? Response.error())
        .then(isolated),
    );
    return;
  }
  // ignoreVary: the server answers `Vary: Origin`, and module scripts send an Origin header that
  // the precache requests did not.
  event.respondWith(
    (async () =>
      isolated(
        (await caches.match(req, { cacheName: CACHE, ignoreSearch: true, ignoreVary: true })) ?? (await fetch(req)),
      ))(),
  );
});
