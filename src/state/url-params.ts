/**
 * URL parameters, validated. A bad value gives a notice and its default,
 * never a broken page.
 */
import { isBackendChoice, type BackendChoice } from '../lib/engine/types';

export interface UrlSettings {
  backend?: BackendChoice;
  /** Run the engine on the main thread (debugging, and the fallback test). */
  inThread: boolean;
}

export interface ParsedUrl {
  settings: UrlSettings;
  problems: string[];
}

export function parseUrlParams(search: string): ParsedUrl {
  const params = new URLSearchParams(search);
  const problems: string[] = [];
  const settings: UrlSettings = { inThread: false };
  const backend = params.get('backend');
  if (backend !== null) {
    const b = backend.trim().toLowerCase();
    if (isBackendChoice(b)) settings.backend = b;
    else problems.push(`Unknown backend "${backend.slice(0, 40)}" in the URL; using automatic choice.`);
  }
  const inThread = params.get('engine');
  if (inThread !== null) {
    if (inThread === 'main') settings.inThread = true;
    else if (inThread !== 'worker')
      problems.push(`Unknown engine "${inThread.slice(0, 40)}" in the URL; using the worker.`);
  }
  return { settings, problems };
}
