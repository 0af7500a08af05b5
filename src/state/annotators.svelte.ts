/**
 * Annotator profiles: the people (and scripted labellers) who give feedback.
 * Profiles are stored in IndexedDB; the one selected is remembered in the
 * settings store. Every saved label carries its annotator (name, and for a
 * labeller its full config).
 */
import { newId, type Annotator } from '../lib/data/records';
import { labellerFromConfig, validateLabellerConfig, type Labeller, type LabellerConfig } from '../lib/rlhf/labellers';
import { getSetting, putSetting, type AnnotatorProfile } from '../lib/storage/db';
import { askPersistence, getStores } from './data.svelte';
import { notices } from './notices.svelte';

const CURRENT_KEY = 'annotator.current';
export const DEFAULT_HUMAN = 'me';
export const MAX_NAME = 60;

export class AnnotatorsState {
  profiles = $state.raw<AnnotatorProfile[]>([]);
  currentId = $state('');
  loaded = $state(false);
  private loading: Promise<void> | null = null;

  get current(): AnnotatorProfile | null {
    return this.profiles.find((p) => p.id === this.currentId) ?? this.profiles[0] ?? null;
  }

  /** The annotator as saved in a record. */
  get annotator(): Annotator {
    const p = this.current;
    if (!p) return { name: DEFAULT_HUMAN, kind: 'human' };
    if (p.kind === 'labeller' && p.labeller) return { name: p.name, kind: 'labeller', labeller: p.labeller };
    return { name: p.name, kind: 'human' };
  }

  /** The scripted labeller of the current profile, or null for a person. */
  get labeller(): Labeller | null {
    const p = this.current;
    if (p?.kind !== 'labeller' || !p.labeller) return null;
    try {
      return labellerFromConfig(p.labeller);
    } catch {
      return null;
    }
  }

  load(): Promise<void> {
    this.loading ??= this.doLoad();
    return this.loading;
  }

  private async doLoad(): Promise<void> {
    try {
      const s = await getStores();
      let list = await s.annotators.getAll();
      if (list.length === 0) {
        // The first visit: one person, "me", so the studio works at once. Saved on the first label.
        list = [{ id: 'human-me', name: DEFAULT_HUMAN, kind: 'human' }];
      }
      this.profiles = sortProfiles(list);
      const cur = await getSetting<string>(s.db, CURRENT_KEY);
      this.currentId = cur && list.some((p) => p.id === cur) ? cur : list[0].id;
    } catch (e) {
      this.profiles = [{ id: 'human-me', name: DEFAULT_HUMAN, kind: 'human' }];
      this.currentId = 'human-me';
      notices.add('error', (e as Error).message);
    } finally {
      this.loaded = true;
    }
  }

  /** Make sure the current profile is saved (the default one is written lazily). */
  async persistCurrent(): Promise<void> {
    const p = this.current;
    if (!p) return;
    try {
      const s = await getStores();
      if (!(await s.annotators.get(p.id))) await s.annotators.put(p);
    } catch {
      // The label itself is what matters; the profile is saved next time.
    }
  }

  /** Why `name` cannot be used for a new profile, or null. */
  nameProblem(name: string, exceptId?: string): string | null {
    const n = name.trim();
    if (!n) return 'Give the annotator a name.';
    if (n.length > MAX_NAME) return `At most ${MAX_NAME} characters.`;
    if (this.profiles.some((p) => p.id !== exceptId && p.name.toLowerCase() === n.toLowerCase())) {
      return `There is already an annotator called “${n}”.`;
    }
    return null;
  }

  async create(name: string, labeller?: LabellerConfig): Promise<AnnotatorProfile | null> {
    const problem = this.nameProblem(name);
    if (problem) {
      notices.add('error', problem);
      return null;
    }
    let profile: AnnotatorProfile;
    try {
      profile = labeller
        ? { id: newId(), name: name.trim(), kind: 'labeller', labeller: validateLabellerConfig(labeller) }
        : { id: newId(), name: name.trim(), kind: 'human' };
    } catch (e) {
      notices.add('error', (e as Error).message);
      return null;
    }
    try {
      const s = await getStores();
      askPersistence();
      await s.annotators.add(profile);
      this.profiles = sortProfiles([...this.profiles, profile]);
      await this.select(profile.id);
      return profile;
    } catch (e) {
      notices.add('error', (e as Error).message);
      return null;
    }
  }

  /** Change a labeller's config (the name stays; records keep the config they were made with). */
  async updateLabeller(id: string, labeller: LabellerConfig): Promise<boolean> {
    const old = this.profiles.find((p) => p.id === id);
    if (!old || old.kind !== 'labeller') return false;
    try {
      const updated: AnnotatorProfile = { ...old, labeller: validateLabellerConfig(labeller) };
      const s = await getStores();
      await s.annotators.put(updated);
      this.profiles = sortProfiles(this.profiles.map((p) => (p.id === id ? updated : p)));
      return true;
    } catch (e) {
      notices.add('error', (e as Error).message);
      return false;
    }
  }

  async select(id: string): Promise<void> {
    if (!this.profiles.some((p) => p.id === id)) return;
    this.currentId = id;
    try {
      const s = await getStores();
      await putSetting(s.db, CURRENT_KEY, id);
    } catch {
      // Remembering the choice is a convenience; it lasts for this visit.
    }
  }
}

function sortProfiles(list: AnnotatorProfile[]): AnnotatorProfile[] {
  return [...list].sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'human' ? -1 : 1));
}

export const annotators = new AnnotatorsState();
