/**
 * How the page is shown, not what it computes: presenter mode and the panels a presenter hid
 * (`?presenter=1`, `?hide=ppo-advanced,data`; the ids are `PANELS` in url-params.ts).
 *
 * Convention: a hideable part of the page carries `data-panel="<id>"` and is wrapped in
 * `{#if !uiPrefs.hidden('<id>')}`.
 */
import type { PpoConfig } from '../lib/rlhf/ppo-config';
import { PANEL_IDS } from './url-params';

/** PPO hyper-parameters shown to everyone; the rest are "advanced" (hidden by `ppo-advanced`). */
export const BASIC_PPO_KEYS: readonly (keyof PpoConfig)[] = [
  'batchSize',
  'maxNewTokens',
  'temperature',
  'klCoef',
  'adaptiveKl',
  'lr',
  'seed',
];

/** What presenter mode hides on top of the URL's `hide=` list. */
const PRESENTER_HIDES: readonly string[] = ['ppo-advanced'];

class UiPrefs {
  presenter = $state(false);
  /** Panel ids hidden by `hide=` (or by the presenter at run time). */
  hiddenIds = $state<string[]>([]);
  /** The keyboard help overlay is open. */
  helpOpen = $state(false);

  /** Is this part of the page hidden? */
  hidden(id: string): boolean {
    return this.hiddenIds.includes(id) || (this.presenter && PRESENTER_HIDES.includes(id));
  }

  setPresenter(on: boolean): void {
    this.presenter = on;
    if (typeof document !== 'undefined') document.documentElement.classList.toggle('presenter', on);
  }

  setHidden(ids: readonly string[]): void {
    this.hiddenIds = ids.filter((id, i) => PANEL_IDS.includes(id) && ids.indexOf(id) === i);
  }

  show(id: string): void {
    this.hiddenIds = this.hiddenIds.filter((x) => x !== id);
  }
}

export const uiPrefs = new UiPrefs();
