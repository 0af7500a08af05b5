/** Ranking feedback: K samples of one prompt ordered best to worst (K from RANKING_MIN to RANKING_MAX). */
import { makeRecord, RANKING_MAX, RANKING_MIN } from '../../lib/data/records';
import type { Studio } from './studio';

export class RankingMode {
  /** Samples per item as the user set it (`k` is the clamped value). */
  size = $state(4);

  constructor(private readonly studio: Studio) {}

  get k(): number {
    return Math.min(RANKING_MAX, Math.max(RANKING_MIN, Math.round(this.size)));
  }

  /** Save the order (response indices, best first). */
  async rank(order: number[]): Promise<boolean> {
    const item = this.studio.current;
    if (!item || item.mode !== 'ranking' || this.studio.saving) return false;
    const record = this.studio.build(() => makeRecord(this.studio.input(item), 'ranking', { order: [...order] }));
    return record ? this.studio.commit(item, record, null) : false;
  }
}
