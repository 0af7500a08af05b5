/**
 * Offline after the first load: register `sw.js` (public/sw.js, with the precache list the
 * build writes into it, see vite.config.ts) in production builds only; under `vite` dev the
 * modules change on every edit and a cache would only get in the way.
 */
export function registerServiceWorker(): void {
  if (!import.meta.env.PROD || !('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register(new URL('sw.js', document.baseURI)).catch((e: unknown) => {
    // Not an error for the page: it works online without one (e.g. a private window that refuses it).
    console.warn(`Offline support is off: the service worker did not register (${(e as Error).message}).`);
  });
}
