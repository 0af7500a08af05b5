/**
 * Reward-model stage: the pairs the preference records give, training in the
 * worker with live metrics, the saved reward models (one active), and the
 * inspector's queries. Saved models live in IndexedDB's `rewardModels` store.
 */
import { compareRecords, recordsToPairs, type PreferenceRecord } from '../lib/data/records';
import { rewardDefaults, type RewardConfig, type RewardMode } from '../lib/rlhf/reward-config';
import { getSetting, putSetting, STORES, toStorageError, writeTx } from '../lib/storage/db';
import type { MetricRow, SavedRewardModel } from '../lib/data/saved';
import type { RewardTrainEvent, TokenReward, WrongPair } from '../lib/engine/types';
import { JobCancelledError } from '../lib/engine/errors';
import { engineState } from './engine.svelte';
import { getStores } from './data.svelte';
import { notices } from './notices.svelte';

const ACTIVE_KEY = 'activeRewardModel';

export type { MetricRow };

/** The Reward page's settings: the whole reward-model table (src/lib/rlhf/reward-config.ts). */
export type RewardSettings = RewardConfig;

/** Each mode's defaults, from the table. */
export const DEFAULT_REWARD_SETTINGS: Readonly<Record<RewardMode, Readonly<RewardSettings>>> = Object.freeze({
  head: rewardDefaults('head'),
  full: rewardDefaults('full'),
});

let jobCounter = 0;

export class RewardState {
  records = $state.raw<PreferenceRecord[]>([]);
  annotator = $state<string>('');
  settings = $state<RewardSettings>({ ...DEFAULT_REWARD_SETTINGS.head });

  running = $state<string | null>(null);
  history = $state.raw<MetricRow[]>([]);
  /** Latest reward distributions (held-out when there is a validation set). */
  distribution = $state.raw<{ chosen: number[]; rejected: number[]; label: string } | null>(null);
  startInfo = $state.raw<Extract<RewardTrainEvent, { type: 'start' }> | null>(null);
  lastError = $state<string | null>(null);

  saved = $state.raw<SavedRewardModel[]>([]);
  activeId = $state<string | null>(null);
  /** Bumped whenever the engine's active reward model changes (restored at start-up, activated or
   *  trained): the Train page asks the engine again then, so a restore that ends after the page
   *  first looked still shows. */
  engineActive = $state(0);

  inspect = $state.raw<{ tokens: TokenReward[]; score: number } | null>(null);
  wrong = $state.raw<WrongPair[] | null>(null);

  readonly annotators = $derived([...new Set(this.records.map((r) => r.annotator.name))].sort());
  readonly usable = $derived(
    this.annotator ? this.records.filter((r) => r.annotator.name === this.annotator) : this.records,
  );
  readonly pairs = $derived(recordsToPairs(this.usable));
  readonly active = $derived(this.saved.find((m) => m.id === this.activeId)?.summary ?? null);

  async refresh(): Promise<void> {
    try {
      const stores = await getStores();
      // A fixed order (not the store's id order), so the same labels train the same model.
      this.records = (await stores.preferences.getAll()).sort(compareRecords);
      const saved = await stores.db.getAll(STORES.rewardModels);
      this.saved = saved.sort((a, b) => b.summary.createdAt - a.summary.createdAt);
      this.activeId = (await getSetting<string>(stores.db, ACTIVE_KEY)) ?? null;
    } catch (e) {
      notices.add('error', (e as Error).message);
    }
  }

  /** After the model loads: make the saved active reward model active in the engine too. */
  async restoreActive(): Promise<void> {
    await this.refresh();
    const m = this.saved.find((s) => s.id === this.activeId);
    if (!m) return;
    try {
      await engineState.engine.activateRewardModel(m.state, m.summary);
      this.engineActive++;
    } catch (e) {
      notices.add('warning', `The saved reward model could not be restored: ${(e as Error).message}`);
    }
  }

  setMode(mode: RewardMode): void {
    this.settings = { ...rewardDefaults(mode), seed: this.settings.seed };
  }

  async train(): Promise<void> {
    if (this.running) return;
    const jobId = `reward-${++jobCounter}`;
    const id = crypto.randomUUID();
    const s = $state.snapshot(this.settings);
    const how = s.mode === 'full' && s.lora ? `full + LoRA r${s.loraR}` : s.mode;
    const name = `RM ${new Date().toLocaleString('en-GB', { dateStyle: 'short', timeStyle: 'short' })} · ${how} · ${this.pairs.length} pairs`;
    this.running = jobId;
    this.history = [];
    this.distribution = null;
    this.startInfo = null;
    this.lastError = null;
    this.wrong = null;
    const rows: MetricRow[] = [];
    let lastPush = 0;
    try {
      const { summary, state } = await engineState.engine.trainRewardModel(
        jobId,
        { id, name, pairs: $state.snapshot(this.pairs), recordIds: this.usable.map((r) => r.id), ...s },
        (e) => {
          if (e.type === 'start') this.startInfo = e;
          else if (e.type === 'step') {
            const { step, ...m } = e.metrics;
            rows.push({ step, metrics: m as Record<string, number> });
          } else {
            const m = e.metrics;
            const evalRow: Record<string, number> = { epoch_accuracy: m.accuracy };
            if (m.eval_accuracy !== undefined) evalRow.eval_accuracy = m.eval_accuracy;
            if (m.eval_loss !== undefined) evalRow.eval_loss = m.eval_loss;
            rows.push({ step: m.step, metrics: evalRow });
            this.distribution = m.eval_chosen_rewards
              ? { chosen: m.eval_chosen_rewards, rejected: m.eval_rejected_rewards ?? [], label: 'held-out pairs' }
              : { chosen: m.chosen_rewards, rejected: m.rejected_rewards, label: 'training pairs' };
          }
          // Draw less often than we train.
          const now = performance.now();
          if (now - lastPush > 200 || e.type === 'epoch') {
            this.history = [...rows];
            lastPush = now;
          }
        },
      );
      this.history = [...rows];
      this.engineActive++;
      await this.save({ id, summary, state, history: rows });
      notices.add(
        'info',
        `Reward model trained: held-out accuracy ${summary.evalAccuracy === null ? 'n/a' : (summary.evalAccuracy * 100).toFixed(1) + '%'} (${summary.valPairs} pairs), now active.`,
      );
    } catch (e) {
      this.history = [...rows];
      if (!(e instanceof JobCancelledError)) {
        this.lastError = (e as Error).message;
        notices.add('error', `${(e as Error).message} The previous reward model stays active.`);
      }
    } finally {
      this.running = null;
    }
  }

  cancel(): void {
    if (this.running) void engineState.engine.cancel(this.running);
  }

  private async save(m: SavedRewardModel): Promise<void> {
    try {
      const stores = await getStores();
      // The model and the setting that makes it the active one are saved together.
      await writeTx(stores.db, [STORES.rewardModels, STORES.settings], 'save the reward model', (tx) =>
        Promise.all([
          tx.objectStore(STORES.rewardModels).put(m),
          tx.objectStore(STORES.settings).put({ id: ACTIVE_KEY, value: m.id }),
        ]),
      );
      this.saved = [m, ...this.saved];
      this.activeId = m.id;
    } catch (e) {
      notices.add(
        'error',
        `The reward model is active but was not saved: ${toStorageError(e, 'save the reward model').message}`,
      );
    }
  }

  async activate(id: string): Promise<void> {
    const m = this.saved.find((s) => s.id === id);
    if (!m) return;
    try {
      await engineState.engine.activateRewardModel(m.state, m.summary);
      this.engineActive++;
      const stores = await getStores();
      await putSetting(stores.db, ACTIVE_KEY, id);
      this.activeId = id;
      this.wrong = null;
    } catch (e) {
      notices.add('error', (e as Error).message);
    }
  }

  async remove(id: string): Promise<void> {
    if (id === this.activeId) {
      notices.add('warning', 'Make another reward model active before deleting this one.');
      return;
    }
    try {
      const stores = await getStores();
      await stores.db.delete(STORES.rewardModels, id);
      this.saved = this.saved.filter((m) => m.id !== id);
    } catch (e) {
      notices.add('error', toStorageError(e, 'delete the reward model').message);
    }
  }

  async inspectText(prompt: string, response: string): Promise<void> {
    try {
      const tokens = await engineState.engine.tokenRewards(prompt, response);
      const [score] = await engineState.engine.scoreResponses([{ prompt, response }]);
      this.inspect = { tokens, score };
    } catch (e) {
      notices.add('error', (e as Error).message);
    }
  }

  async loadWrong(): Promise<void> {
    try {
      const held = new Set(this.active?.valPrompts ?? []);
      this.wrong = await engineState.engine.wrongPairs($state.snapshot(this.pairs.filter((p) => held.has(p.prompt))));
    } catch (e) {
      notices.add('error', (e as Error).message);
    }
  }
}

export const rewardState = new RewardState();
