/** Hash routing between the stages: `#/model`, `#/feedback`, … */
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

function fromHash(hash: string): StageId {
  const id = hash.replace(/^#\/?/, '').split(/[/?]/)[0];
  return (STAGES.find((s) => s.id === id)?.id ?? 'start') as StageId;
}

class Router {
  stage = $state<StageId>(fromHash(typeof location === 'undefined' ? '' : location.hash));

  constructor() {
    if (typeof window !== 'undefined') {
      window.addEventListener('hashchange', () => (this.stage = fromHash(location.hash)));
    }
  }

  go(id: StageId): void {
    location.hash = `#/${id}`;
  }
}

export const router = new Router();
