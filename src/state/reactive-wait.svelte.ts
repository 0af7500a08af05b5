/**
 * Awaiting app state instead of polling it: `until` resolves when a condition over rune state
 * becomes true (checked at once and whenever what it reads changes), `watch` runs a function
 * whenever what it reads changes. Both are Svelte effects in their own root, so they work in
 * plain state classes, and both end with an `AbortSignal` (the scenario runner's pause and stop).
 */

/** Resolves when `pred()` is true; rejects with `signal.reason` when the signal aborts first. */
export function until(pred: () => boolean, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    let stop: (() => void) | null = null;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      signal?.removeEventListener('abort', onAbort);
      // Not from inside the effect that is running: destroy the root after it.
      queueMicrotask(() => stop?.());
    };
    const onAbort = (): void => {
      finish();
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    stop = $effect.root(() => {
      $effect(() => {
        if (!done && pred()) {
          finish();
          resolve();
        }
      });
    });
  });
}

/** Run `fn` now and whenever the state it reads changes, until the returned function is called. */
export function watch(fn: () => void): () => void {
  return $effect.root(() => {
    $effect(fn);
  });
}
