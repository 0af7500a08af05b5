/**
 * The studio's prompt sources: the bundled sets, the user's imported sets and the typed one,
 * stored in IndexedDB (`prompts`), and which one is selected.
 */
import { sentence, sentenceEnd } from '../../lib/data/messages';
import { parsePromptSet, promptSetFromJsonl, type PromptSet } from '../../lib/data/prompts';
import { newId } from '../../lib/data/records';
import reviewsJson from '../../../static/prompts/reviews.json';
import storiesJson from '../../../static/prompts/stories.json';
import requestsJson from '../../../static/prompts/requests.json';
import { askPersistence, dataState, getStores } from '../data.svelte';
import { notices } from '../notices.svelte';
import type { PromptSource } from './studio';

export const BUNDLED_SETS: PromptSource[] = [
  { id: 'bundled:reviews', set: parsePromptSet(reviewsJson), builtIn: true },
  { id: 'bundled:stories', set: parsePromptSet(storiesJson), builtIn: true },
  { id: 'bundled:requests', set: parsePromptSet(requestsJson), builtIn: true },
];
const TYPED_ID = 'typed';

export class PromptSources {
  list = $state.raw<PromptSource[]>(BUNDLED_SETS);
  selectedId = $state(BUNDLED_SETS[0].id);
  typedText = $state('');

  private loaded = false;
  private loadedVersion = -1;

  /** The selected source (the first when the selected one is gone). */
  get current(): PromptSource {
    return this.list.find((s) => s.id === this.selectedId) ?? this.list[0];
  }

  async load(): Promise<void> {
    if (this.loaded && dataState.version === this.loadedVersion) return;
    this.loadedVersion = dataState.version;
    this.loaded = true;
    try {
      const s = await getStores();
      const stored = (await s.prompts.getAll()).sort((a, b) => a.createdAt - b.createdAt);
      this.list = [
        ...BUNDLED_SETS,
        ...stored.map((p) => ({
          id: p.id,
          set: { name: p.name, description: p.description, prompts: p.prompts },
          builtIn: false,
        })),
      ];
      const typed = stored.find((p) => p.id === TYPED_ID);
      if (typed && !this.typedText) this.typedText = typed.prompts.join('\n');
    } catch (e) {
      notices.add('error', (e as Error).message);
    }
  }

  select(id: string): void {
    if (!this.list.some((s) => s.id === id)) return;
    this.selectedId = id;
  }

  /** Save the typed prompts (one per line) as the "Typed prompts" set and use it. */
  async useTyped(): Promise<boolean> {
    let set: PromptSet;
    try {
      set = parsePromptSet({
        name: 'Typed prompts',
        description: 'Prompts you typed',
        prompts: this.typedText.split('\n').filter((l) => l.trim() !== ''),
      });
    } catch (e) {
      notices.add('error', (e as Error).message);
      return false;
    }
    return this.save(TYPED_ID, set);
  }

  /** Import prompt-only JSONL (`{"prompt": …}` per line) or a prompt-set JSON file. */
  async importFile(file: File): Promise<boolean> {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const name = file.name.replace(/\.(jsonl?|txt)$/i, '') || 'imported prompts';
    let set: PromptSet | null = null;
    if (/\.json$/i.test(file.name)) {
      try {
        set = parsePromptSet(new TextDecoder().decode(bytes));
      } catch (e) {
        notices.add('error', `${file.name}: ${sentence((e as Error).message)} Nothing was imported.`);
        return false;
      }
    } else {
      const res = promptSetFromJsonl(bytes, name, { description: `Imported from ${file.name}` });
      if (!res.set) {
        const first = res.errors.slice(0, 5).map((e) => sentenceEnd(e.line ? `line ${e.line}: ${e.reason}` : e.reason));
        const more = res.errors.length > 5 ? ` (and ${res.errors.length - 5} more)` : '';
        notices.add('error', `${file.name} was not imported: ${first.join('; ')}${more}.`);
        return false;
      }
      set = res.set;
    }
    return this.save(newId(), set);
  }

  private async save(id: string, set: PromptSet): Promise<boolean> {
    try {
      const s = await getStores();
      askPersistence();
      await s.prompts.put({ ...set, id, createdAt: Date.now() });
      dataState.bump();
      this.loaded = false;
      await this.load();
      this.selectedId = id;
      return true;
    } catch (e) {
      notices.add('error', (e as Error).message);
      return false;
    }
  }
}
