/**
 * App state for the engine: starting it, the active backend, switching backend.
 * The backend the user forces is remembered in localStorage; `?backend=` in the
 * URL wins over it for that visit.
 */
import { startEngine, type EngineHandle, type EngineMode } from '../lib/engine/client';
import type { BackendChoice, BackendInfo, Engine, EngineTestHooks } from '../lib/engine/types';
import { isBackendChoice } from '../lib/engine/types';
import { notices } from './notices.svelte';

const BACKEND_KEY = 'rlhf-playground.backend';

function storedBackend(): BackendChoice {
  try {
    const v = localStorage.getItem(BACKEND_KEY);
    return isBackendChoice(v) ? v : 'auto';
  } catch {
    return 'auto';
  }
}

function storeBackend(choice: BackendChoice): void {
  try {
    localStorage.setItem(BACKEND_KEY, choice);
  } catch {
    /* private mode: the choice lasts for this visit only */
  }
}

export function wasmPath(): string {
  return new URL('tfjs-wasm/', document.baseURI).href;
}

export class EngineState {
  status = $state<'starting' | 'ready' | 'switching' | 'failed'>('starting');
  info = $state.raw<BackendInfo | null>(null);
  mode = $state<EngineMode | null>(null);
  error = $state<string | null>(null);
  requested = $state<BackendChoice>('auto');
  private handle: EngineHandle | null = null;

  get engine(): Engine {
    if (!this.handle) throw new Error('engine not started');
    return this.handle.engine;
  }

  /** Hooks for the end-to-end tests (`rlhf.engine.testHooks` in the page); never used by the app. */
  get testHooks(): EngineTestHooks {
    if (!this.handle) throw new Error('engine not started');
    return this.handle.testHooks;
  }

  get ready(): boolean {
    return this.status === 'ready';
  }

  async start(opts: { backend?: BackendChoice; inThread?: boolean; threads?: number }): Promise<void> {
    this.requested = opts.backend ?? storedBackend();
    try {
      this.handle = await startEngine({ forceInThread: opts.inThread });
      this.mode = this.handle.mode;
      if (this.handle.mode === 'in-thread') {
        notices.add(
          'warning',
          `The engine runs on the page itself (${this.handle.fallbackReason}); the page may stutter while it trains.`,
        );
      }
      await this.handle.engine.onEvent((e) => {
        this.info = e.backend;
        notices.add(e.kind === 'device-lost' ? 'warning' : 'info', e.message);
      });
      this.info = await this.handle.engine.init({
        backend: this.requested,
        wasmPath: wasmPath(),
        wasmThreads: opts.threads,
      });
      this.reportNotes(this.info);
      this.status = 'ready';
    } catch (e) {
      this.status = 'failed';
      this.error = (e as Error).message;
      notices.add('error', (e as Error).message);
    }
  }

  async setBackend(choice: BackendChoice): Promise<void> {
    if (!this.handle) return;
    this.requested = choice;
    storeBackend(choice);
    this.status = 'switching';
    try {
      this.info = await this.handle.engine.setBackend(choice);
      this.reportNotes(this.info);
    } catch (e) {
      notices.add('error', (e as Error).message);
    } finally {
      this.status = this.info ? 'ready' : 'failed';
    }
  }

  private reportNotes(info: BackendInfo): void {
    // Only the notes that change what the user gets deserve a notice; the rest sit in the tooltip.
    if (info.requested !== 'auto' && info.name !== info.requested) {
      notices.add('warning', info.notes[0] ?? `${info.requested} could not start; using ${info.name}.`);
    }
  }
}

export const engineState = new EngineState();
