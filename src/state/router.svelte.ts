/** Hash routing between the stages: `#/model`, `#/feedback`, …, and pages outside the stage menu
 *  that take a parameter: `#/report/<runId>` (a run's report). */
export const STAGES = [
  { id: 'start', label: 'Start', hint: 'One-click scenarios: label → reward model → PPO, and a guided tour.' },
  { id: 'pretrain', label: 'Pretrain', hint: 'Pretrain a small model on your own text; use it as the base model.' },
  { id: 'model', label: 'Model', hint: 'The base language model: sample from it, inspect its tokens.' },
  { id: 'feedback', label: 'Feedback', hint: 'Compare, rank, rate or edit samples; scripted labellers.' },
  { id: 'reward', label: 'Reward model', hint: 'Train a Bradley–Terry reward model on the preferences.' },
  { id: 'train', label: 'Train', hint: 'PPO (or DPO, SFT) on the policy with live curves.' },
  { id: 'runs', label: 'Runs', hint: 'Compare runs side by side.' },
  { id: 'data', label: 'Data', hint: 'Browse, import and export preference data.' },
] as const;

export type StageId = (typeof STAGES)[number]['id'];

/** Pages reached by links, not shown in the stage menu. */
export const PAGES = [{ id: 'report', label: 'Run report' }] as const;
export type PageId = (typeof PAGES)[number]['id'];

function fromHash(hash: string): StageId | PageId {
  const id = hash.replace(/^#\/?/, '').split(/[/?]/)[0];
  return (STAGES.find((s) => s.id === id)?.id ?? PAGES.find((p) => p.id === id)?.id ?? 'start') as StageId | PageId;
}

/** The part after the page id (`#/report/<runId>` → the run id), decoded; '' when none. */
function paramOf(hash: string): string {
  const raw = hash.replace(/^#\/?/, '').split('?')[0].split('/').slice(1).join('/');
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

class Router {
  stage = $state<StageId | PageId>(fromHash(typeof location === 'undefined' ? '' : location.hash));
  param = $state(paramOf(typeof location === 'undefined' ? '' : location.hash));

  constructor() {
    if (typeof window !== 'undefined') {
      window.addEventListener('hashchange', () => {
        this.stage = fromHash(location.hash);
        this.param = paramOf(location.hash);
      });
    }
  }

  go(id: StageId): void {
    location.hash = `#/${id}`;
  }
}

export const router = new Router();
