/**
 * The Train page's JavaScript reward functions: the code being edited (saved in IndexedDB's
 * `settings` store as the user types, so a reload keeps it), "Test on samples" (a few samples of
 * the loaded model scored in a reward worker of the page's own), and shared links: a link's
 * `rewardfn=` code is foreign, so it is only shown until the user presses "Use this code".
 */
import type { PpoSetup } from '../lib/engine/types';
import { RewardFunctionRunner } from '../lib/engine/reward-fn-runner';
import {
  checkSpecs,
  combineWeighted,
  DEFAULT_REWARD_SPECS,
  EXAMPLES,
  MAX_LINK_CHARS,
  MAX_REWARD_FUNCTIONS,
  specsFromLink,
  specsToLink,
  type RewardFunctionSpec,
} from '../lib/rlhf/reward-functions';
import { getSetting, putSetting, toStorageError } from '../lib/storage/db';
import { getStores } from './data.svelte';
import { engineState } from './engine.svelte';
import { notices } from './notices.svelte';

export const REWARD_FN_KEY = 'rewardFunctions';
/** The URL parameter carrying the functions (base64url of their JSON). */
export const REWARD_FN_PARAM = 'rewardfn';
const SAVE_MS = 300;
const TEST_SAMPLES = 4;

/** What the `settings` store keeps under `REWARD_FN_KEY`. */
interface SavedRewardFunctions {
  functions: RewardFunctionSpec[];
  selected: boolean;
}

export interface RewardTest {
  prompts: string[];
  completions: string[];
  /** [function][sample] */
  parts: number[][];
  total: number[];
}

let jobCounter = 0;

export class RewardFnState {
  functions = $state<RewardFunctionSpec[]>(structuredClone(DEFAULT_REWARD_SPECS) as RewardFunctionSpec[]);
  /** The user chose these functions as the PPO reward (kept across reloads with the code). */
  selected = $state(false);
  /** Functions from a shared link, shown and not run until the user accepts them. */
  fromLink = $state<RewardFunctionSpec[] | null>(null);
  testing = $state(false);
  test = $state.raw<RewardTest | null>(null);
  testError = $state<string | null>(null);
  /** Problems with the specs (names, weights), or null. */
  readonly problem = $derived(checkSpecs(this.functions));

  private saveTimer: ReturnType<typeof setTimeout> | null = null;
  private runner: RewardFunctionRunner | null = null;
  private loaded = false;

  /** Read the saved functions (once). */
  async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    try {
      const stores = await getStores();
      const saved = await getSetting<SavedRewardFunctions>(stores.db, REWARD_FN_KEY);
      if (Array.isArray(saved?.functions) && saved.functions.length) this.functions = saved.functions;
      if (saved?.selected) this.selected = true;
    } catch (e) {
      notices.add('error', toStorageError(e, 'read the reward functions').message);
    }
  }

  /** Save now (edits call `changed`, which saves shortly after the last keystroke). */
  async save(): Promise<void> {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    try {
      const stores = await getStores();
      const value: SavedRewardFunctions = { functions: $state.snapshot(this.functions), selected: this.selected };
      await putSetting(stores.db, REWARD_FN_KEY, value);
    } catch (e) {
      notices.add('error', `The reward functions were not saved: ${toStorageError(e, 'save them').message}`);
    }
  }

  /** The reward picker moved to or away from these functions. */
  select(on: boolean): void {
    if (this.selected === on) return;
    this.selected = on;
    void this.save();
  }

  changed(): void {
    this.test = null;
    this.testError = null;
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => void this.save(), SAVE_MS);
  }

  add(exampleId: string): void {
    if (this.functions.length >= MAX_REWARD_FUNCTIONS) return;
    const ex = EXAMPLES.find((e) => e.id === exampleId) ?? EXAMPLES[0];
    let name = ex.id;
    for (let i = 2; this.functions.some((f) => f.name === name); i++) name = `${ex.id}${i}`;
    this.functions.push({ name, code: ex.code, weight: 1 });
    this.changed();
  }

  remove(i: number): void {
    if (this.functions.length <= 1) return;
    this.functions.splice(i, 1);
    this.changed();
  }

  /** Replace function i's code with an example. */
  useExample(i: number, exampleId: string): void {
    const ex = EXAMPLES.find((e) => e.id === exampleId);
    if (!ex) return;
    this.functions[i].code = ex.code;
    this.changed();
  }

  /** The reward of a PPO setup. */
  reward(): Extract<PpoSetup['reward'], { kind: 'function' }> {
    return { kind: 'function', functions: $state.snapshot(this.functions) as RewardFunctionSpec[] };
  }

  /** Run the functions on a few samples of the loaded model, with the Train page's prompts and length. */
  async runTest(prompts: readonly string[], maxNewTokens: number, temperature: number): Promise<void> {
    if (this.testing) return;
    this.test = null;
    this.testError = this.problem;
    if (this.problem) return;
    this.testing = true;
    try {
      const res = await engineState.engine.generate(`reward-test-${++jobCounter}`, {
        prompts: prompts.slice(0, TEST_SAMPLES),
        maxNewTokens,
        temperature,
        topK: 0,
        topP: 1,
        seed: 1234,
        useCache: true,
      });
      const specs = $state.snapshot(this.functions) as RewardFunctionSpec[];
      this.runner ??= new RewardFunctionRunner();
      const completions = res.samples.map((s) => s.text);
      const parts = await this.runner.run(specs, {
        prompts: res.samples.map((s) => s.prompt),
        completions,
        completionIds: res.samples.map((s) => s.ids),
        finished: res.samples.map((s) => s.finished),
      });
      this.test = {
        prompts: res.samples.map((s) => s.prompt),
        completions,
        parts,
        total: combineWeighted(
          parts,
          specs.map((s) => s.weight),
        ),
      };
    } catch (e) {
      this.testError = (e as Error).message ?? String(e);
    } finally {
      this.testing = false;
    }
  }

  /** A shared link's `rewardfn=` value: shown, not used, until `acceptLink`. */
  offerLink(value: string): void {
    try {
      this.fromLink = specsFromLink(value);
    } catch (e) {
      notices.add('warning', `The link's reward functions were not loaded: ${(e as Error).message}.`);
    }
  }

  acceptLink(): void {
    if (!this.fromLink) return;
    this.functions = this.fromLink;
    this.fromLink = null;
    this.changed();
    void this.save();
  }

  dismissLink(): void {
    this.fromLink = null;
  }

  /** The `rewardfn=` value of a link, or null (with a notice) when the code is too long for one. */
  linkValue(): string | null {
    const v = specsToLink($state.snapshot(this.functions) as RewardFunctionSpec[]);
    if (v === null)
      notices.add(
        'warning',
        `The reward functions are too long for a link (over ${MAX_LINK_CHARS} characters encoded); the link leaves them out. Export the run or copy the code instead.`,
      );
    return v;
  }
}

export const rewardFnState = new RewardFnState();
