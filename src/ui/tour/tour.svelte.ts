/**
 * Tour state: open or not, the step shown, and the step the user stopped at (localStorage, so
 * "Resume tour" survives a reload). Steps are data (`tour-steps.ts`).
 */
import { router } from '../../state/router.svelte';
import { TOUR_STEPS, type TourStep } from './tour-steps';

const KEY = 'rlhf-playground.tour';

interface Saved {
  /** Index of the step the user was on when they left. */
  step: number;
  /** Finished (went past the last step). */
  done: boolean;
}

function read(): Saved | null {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Saved | null;
    if (v && Number.isInteger(v.step) && v.step >= 0 && v.step < TOUR_STEPS.length) return v;
  } catch {
    /* private mode or bad JSON: start fresh */
  }
  return null;
}

function write(v: Saved | null): void {
  try {
    if (v) localStorage.setItem(KEY, JSON.stringify(v));
    else localStorage.removeItem(KEY);
  } catch {
    /* storage unavailable: the tour still works, it just will not be remembered */
  }
}

export class TourState {
  open = $state(false);
  index = $state(0);
  /** Where the user stopped last time (null: never started, or finished). */
  saved = $state<Saved | null>(typeof localStorage === 'undefined' ? null : read());

  readonly step: TourStep = $derived(TOUR_STEPS[this.index]);
  readonly canResume = $derived(this.saved !== null && !this.saved.done && this.saved.step > 0);

  async start(at = 0): Promise<void> {
    this.open = true;
    await this.goTo(at, false);
  }

  resume(): Promise<void> {
    return this.start(this.saved?.step ?? 0);
  }

  next(): Promise<void> {
    if (this.index + 1 >= TOUR_STEPS.length) return this.finish();
    return this.goTo(this.index + 1);
  }

  back(): Promise<void> {
    return this.goTo(Math.max(0, this.index - 1));
  }

  /** Close, remembering the step for "Resume tour". */
  async skip(): Promise<void> {
    await this.step.leave?.();
    this.open = false;
    this.remember({ step: this.index, done: false });
  }

  async finish(): Promise<void> {
    await this.step.leave?.();
    this.open = false;
    this.remember({ step: 0, done: true });
  }

  private async goTo(i: number, leave = true): Promise<void> {
    if (leave) await this.step.leave?.();
    this.index = i;
    const s = TOUR_STEPS[i];
    if (router.stage !== s.stage) router.go(s.stage);
    this.remember({ step: i, done: false });
    await s.enter?.();
  }

  private remember(v: Saved): void {
    this.saved = v;
    write(v);
  }
}

export const tourState = new TourState();
