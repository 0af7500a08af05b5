/**
 * Scripted labelling (RLAIF): a labeller (sentiment lexicon, length, keywords, rules…) labels
 * the pair on screen (`judge`) or a whole batch of freshly generated pairs (`labelQueue`),
 * saved batch by batch; the scenario runner labels through it too.
 *
 * Reproducible: a run's prompts, sampling seeds and the labeller's noise all come from
 * `deriveSeed(seed, labels the annotator has already saved)`. Two fresh profiles with one seed
 * label the same pairs the same way; a second run in the same profile (more labels saved)
 * labels other pairs.
 */
import type { SamplingSettings } from '../../lib/engine/types';
import { makeRecord } from '../../lib/data/records';
import type { Choice, Judgement, Labeller } from '../../lib/rlhf/labellers';
import { deriveSeed, Rng } from '../../lib/model/rng';
import { annotators } from '../annotators.svelte';
import { getStores, saveAll } from '../data.svelte';
import { engineState } from '../engine.svelte';
import { modelState } from '../model.svelte';
import { notices } from '../notices.svelte';
import { drawPrompts, recordSampling, toResponse, type Studio } from './studio';

/** Pairs per `generate` call when a labeller labels the queue (2 rows each). */
const BATCH_PAIRS_PER_CALL = 24;
/** Most pairs one `labelQueue` call labels. */
const MAX_BATCH = 5000;

export interface BatchProgress {
  done: number;
  total: number;
  saved: number;
  running: boolean;
  message?: string;
}

let jobCounter = 0;

/** The seeds of one labelling run (see the file header). */
function labelRunSeeds(seed: number, alreadySaved: number) {
  const run = deriveSeed(seed, alreadySaved);
  return {
    prompts: deriveSeed(run, 1),
    labeller: deriveSeed(run, 2),
    /** The sampling seed of the run's `b`-th generate call. */
    batch: (b: number) => deriveSeed(run, 3, b),
  };
}

export class ScriptedLabelling {
  /** "Label the queue" progress (null before the first run). */
  batch = $state.raw<BatchProgress | null>(null);

  private job: string | null = null;
  private cancelled = false;

  constructor(private readonly studio: Studio) {}

  get running(): boolean {
    return !!this.batch?.running;
  }

  /** What `labeller` says about the pair on screen (its noise seeded by the item). */
  judge(labeller: Labeller): Judgement | null {
    const item = this.studio.current;
    if (!item || item.mode !== 'pairwise') return null;
    return labeller.judge(item.responses[0].text, item.responses[1].text, item.prompt, new Rng(item.key));
  }

  /**
   * Generate `n` pairs with the studio's settings, in batches of many prompts per `generate`
   * call, label each with the current labeller and save each batch (all of it or none).
   * Cancellable; saved batches stay.
   */
  async labelQueue(n: number): Promise<void> {
    const labeller = annotators.labeller;
    if (!labeller || this.running || !this.studio.modelReady) return;
    const total = Math.max(1, Math.min(MAX_BATCH, Math.floor(n)));
    this.cancelled = false;
    this.batch = { done: 0, total, saved: 0, running: true };
    this.studio.cancelGeneration();
    const annotator = annotators.annotator;
    void annotators.persistCurrent();
    const s = $state.snapshot(this.studio.sampling) as SamplingSettings;
    const list = [...this.studio.prompts];
    const info = modelState.info!;
    let saved = 0;
    let message: string | undefined;
    try {
      const stores = await getStores();
      const before = (await stores.preferences.list({ annotator: annotator.name, limit: 0 })).total;
      const seeds = labelRunSeeds(s.seed, before);
      const promptRng = new Rng(seeds.prompts);
      const rng = new Rng(seeds.labeller);
      for (let b = 0; saved < total && !this.cancelled; b++) {
        const m = Math.min(BATCH_PAIRS_PER_CALL, total - saved);
        const prompts = drawPrompts(list, m, promptRng);
        const seed = seeds.batch(b);
        const id = `label-queue-${++jobCounter}`;
        this.job = id;
        const res = await engineState.engine.generate(
          id,
          { prompts: prompts.flatMap((p) => [p, p]), ...s, seed },
          (p) => {
            this.batch = { done: saved + (m * p.step) / p.total, total, saved, running: true };
          },
        );
        this.job = null;
        const now = Date.now();
        const records = prompts.map((_, i) => {
          const [a, b] = [res.samples[2 * i], res.samples[2 * i + 1]];
          const choice: Choice = labeller.compare(a.text, b.text, a.prompt, rng);
          return makeRecord(
            {
              prompt: a.prompt,
              responses: [toResponse(a), toResponse(b)],
              modelId: info.name,
              checkpointId: info.source === 'bundled' ? 'base' : 'files',
              sampling: recordSampling(s),
              seed,
              annotator,
            },
            'pairwise',
            choice,
            now,
          );
        });
        await saveAll(records);
        saved += records.length;
        this.batch = { done: saved, total, saved, running: true };
      }
      message = this.cancelled
        ? `Stopped: ${saved} of ${total} pairs labelled and saved.`
        : `Done: ${saved} pairs labelled by ${annotator.name} and saved.`;
    } catch (e) {
      const cancel = this.studio.isCancel(e);
      message = cancel
        ? `Stopped: ${saved} of ${total} pairs labelled and saved.`
        : `Stopped after ${saved} saved pairs: ${(e as Error).message}`;
      if (!cancel) notices.add('error', message);
    } finally {
      this.job = null;
      this.batch = { done: saved, total, saved, running: false, message };
      void this.studio.pump();
    }
  }

  cancel(): void {
    this.cancelled = true;
    if (this.job) void engineState.engine.cancel(this.job);
  }
}
