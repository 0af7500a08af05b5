/**
 * Pairwise feedback (A / B / tie / both bad / skip): the vote, the arena (two sampling settings
 * compared blind, revealed after the vote, with a tally), and ordering the queue by the active
 * reward model's uncertainty (active learning: the pairs it is least sure about first).
 */
import type { GenerateResult, SamplingSettings } from '../../lib/engine/types';
import { makeRecord, type PairwiseLabel } from '../../lib/data/records';
import type { Rng } from '../../lib/model/rng';
import { engineState } from '../engine.svelte';
import { notices } from '../notices.svelte';
import { recordSampling, toResponse, type QueueItem, type Reveal, type Studio } from './studio';

export class PairwiseMode {
  /** Compare two settings, hidden until the vote. */
  arena = $state(false);
  /** Label first the pairs the active reward model is least sure about (active learning). */
  byUncertainty = $state(false);
  arenaTemps = $state<[number, number]>([0.6, 1.3]);
  reveal = $state.raw<Reveal | null>(null);
  /** Arena tally per arm name. */
  tally = $state.raw<Record<string, { wins: number; losses: number; ties: number }>>({});

  constructor(private readonly studio: Studio) {}

  async vote(label: PairwiseLabel): Promise<boolean> {
    const item = this.studio.current;
    if (!item || item.mode !== 'pairwise' || this.studio.saving) return false;
    const record = this.studio.build(() => makeRecord(this.studio.input(item), 'pairwise', label));
    if (!record) return false;
    const ok = await this.studio.commit(item, record, null);
    if (ok && item.arms) {
      this.reveal = { chosen: label, arms: item.arms };
      if (label === 'A' || label === 'B' || label === 'tie') this.count(item.arms, label);
    } else if (ok) this.reveal = null;
    return ok;
  }

  private count(arms: QueueItem['arms'] & object, label: 'A' | 'B' | 'tie'): void {
    const t = { ...this.tally };
    const [a, b] = arms.map((x) => x.name);
    for (const n of [a, b]) t[n] ??= { wins: 0, losses: 0, ties: 0 };
    if (label === 'tie') {
      t[a] = { ...t[a], ties: t[a].ties + 1 };
      t[b] = { ...t[b], ties: t[b].ties + 1 };
    } else {
      const [w, l] = label === 'A' ? [a, b] : [b, a];
      t[w] = { ...t[w], wins: t[w].wins + 1 };
      t[l] = { ...t[l], losses: t[l].losses + 1 };
    }
    this.tally = t;
  }

  /**
   * Arena items: each prompt sampled at both temperatures (arm seeds `seed`, `seed + 1`), the
   * sides swapped at random with `rng`.
   */
  async arenaItems(
    prompts: string[],
    s: SamplingSettings,
    seed: number,
    rng: Rng,
    generate: (prompts: string[], s: SamplingSettings) => Promise<GenerateResult>,
    base: Pick<QueueItem, 'modelId' | 'checkpointId' | 'config' | 'mode'>,
    nextKey: () => number,
  ): Promise<QueueItem[]> {
    const temps = [...this.arenaTemps];
    const results: GenerateResult[] = [];
    for (let arm = 0; arm < 2; arm++) {
      results.push(await generate(prompts, { ...s, temperature: temps[arm], seed: seed + arm }));
    }
    return prompts.map((_, i) => {
      const swap = rng.next() < 0.5;
      const order = swap ? [1, 0] : [0, 1];
      const arms = order.map((a) => ({
        name: `temperature ${temps[a].toFixed(2)}`,
        temperature: temps[a],
        seed: seed + a,
      }));
      return {
        ...base,
        key: nextKey(),
        prompt: results[0].samples[i].prompt,
        responses: order.map((a) =>
          toResponse(results[a].samples[i], { sampling: recordSampling(s, temps[a]), seed: seed + a }),
        ),
        arms,
        // The record's own setting is response A's; each response also carries its own.
        sampling: recordSampling(s, arms[0].temperature),
        seed: arms[0].seed,
      };
    });
  }

  /** Score both responses of each pair with the active reward model; most uncertain first. */
  async leastCertain(items: QueueItem[]): Promise<QueueItem[]> {
    try {
      const flat = items.flatMap((it) => it.responses.map((r) => ({ prompt: it.prompt, response: r.text })));
      const scores = await engineState.engine.scoreResponses(flat);
      const scored = items.map((it, i) => ({ ...it, uncertainty: Math.abs(scores[2 * i] - scores[2 * i + 1]) }));
      return scored.sort((a, b) => a.uncertainty - b.uncertainty);
    } catch (e) {
      this.byUncertainty = false;
      notices.add('warning', `Ordering by uncertainty is off: ${(e as Error).message}`);
      return items;
    }
  }
}
