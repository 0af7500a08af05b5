/** Rating feedback: each of K samples rated 1–7, with flags for problems. */
import { makeRecord, RATING_MAX_RESPONSES, type RatingFlags } from '../../lib/data/records';
import type { Studio } from './studio';

export class RatingMode {
  /** Samples per item as the user set it (`k` is the clamped value). */
  size = $state(2);

  constructor(private readonly studio: Studio) {}

  get k(): number {
    return Math.min(RATING_MAX_RESPONSES, Math.max(1, Math.round(this.size)));
  }

  async rate(ratings: number[], flags: RatingFlags[]): Promise<boolean> {
    const item = this.studio.current;
    if (!item || item.mode !== 'rating' || this.studio.saving) return false;
    const record = this.studio.build(() =>
      makeRecord(this.studio.input(item), 'rating', { ratings: [...ratings], flags: flags.map((f) => ({ ...f })) }),
    );
    return record ? this.studio.commit(item, record, null) : false;
  }
}
