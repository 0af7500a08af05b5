/** Edit feedback: the user rewrites a sample; saved as a demonstration and as edited ≻ original. */
import { makeRecord, toDemonstration } from '../../lib/data/records';
import { engineState } from '../engine.svelte';
import type { Studio } from './studio';

export class EditMode {
  constructor(private readonly studio: Studio) {}

  async save(edited: string): Promise<boolean> {
    const item = this.studio.current;
    if (!item || item.mode !== 'edit' || this.studio.saving) return false;
    let editedTokenIds: number[] = [];
    try {
      editedTokenIds = await engineState.engine.tokenize(edited);
    } catch {
      /* the edit is still worth saving without ids; they can be recomputed from the text */
    }
    const record = this.studio.build(() => makeRecord(this.studio.input(item), 'edit', { edited, editedTokenIds }));
    if (!record) return false;
    return this.studio.commit(item, record, toDemonstration(record));
  }
}
