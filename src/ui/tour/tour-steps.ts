/**
 * The guided tour as data: each step names the stage to open, what to highlight (a `data-tour`
 * id, or CSS selectors tried in order — the first element found is highlighted), and optional
 * enter/leave hooks. `Tour.svelte` plays it; the step reached is remembered (localStorage).
 *
 * Order follows the RLHF pipeline of Ouyang et al. 2022 ("Training language models to follow
 * instructions with human feedback", figure 2): base model → feedback → reward model → SFT →
 * PPO, and then the three terms of PPO's loss (Schulman et al. 2017, eq. 9: clipped policy
 * loss, value loss, entropy bonus) on the Train page's live charts.
 */
import type { StageId } from '../../state/router.svelte';

export interface TourStep {
  id: string;
  title: string;
  text: string;
  /** The stage the step is shown on. */
  stage: StageId;
  /** Selectors tried in order; the first on the page is highlighted. None: a centred card. */
  target?: string[];
  /** Run when the step opens (after the stage is shown) and when it is left. */
  enter?: () => void | Promise<void>;
  leave?: () => void | Promise<void>;
}

const tour = (id: string) => `[data-tour="${id}"]`;

export const TOUR_STEPS: readonly TourStep[] = [
  {
    id: 'welcome',
    title: 'RLHF in one tab',
    text: 'This page is the whole loop: a small language model, people (or scripts) saying which answer is better, a reward model that learns those preferences, and PPO nudging the model towards them. The table shows the result of one run: base model on the left, the trained policy on the right.',
    stage: 'start',
    target: [tour('first-screen')],
  },
  {
    id: 'base-model',
    title: '1 · The base model',
    text: 'A ~1M-parameter GPT trained on short reviews, stories and requests. It writes fluent text but has no idea what you want: sample from it here and look at its tokens.',
    stage: 'model',
    target: [tour('model-sample'), '[data-testid="stage-model"]'],
  },
  {
    id: 'feedback',
    title: '2 · Feedback',
    text: 'Two samples for the same prompt: pick the better one (keys A and B). A scripted labeller can do this hundreds of times in seconds, noise and position bias included, so you can see how label quality matters.',
    stage: 'feedback',
    target: [tour('feedback-compare'), '[data-testid="stage-feedback"]'],
  },
  {
    id: 'reward-model',
    title: '3 · Reward model',
    text: 'A copy of the model with a scalar head learns to give the preferred answer the higher score (Bradley–Terry). Held-out accuracy tells you whether it learned the preference or memorised the pairs.',
    stage: 'reward',
    target: [tour('reward-train'), '[data-testid="stage-reward"]'],
  },
  {
    id: 'sft',
    title: 'SFT: learning from demonstrations',
    text: 'Before RL, InstructGPT fine-tuned on written demonstrations (supervised fine-tuning). Edits you make in the studio are saved as demonstrations; the Train page trains on them when you pick SFT.',
    stage: 'train',
    target: [tour('sft'), '[data-testid="stage-train"]'],
  },
  {
    id: 'policy-loss',
    title: 'PPO · policy loss',
    text: 'The clipped surrogate: make answers with a positive advantage more likely, but never move the probability ratio further than 1 ± ε in one update. It hovers near zero by design; the reward chart is where progress shows.',
    stage: 'train',
    target: ['[data-metric="loss/policy_avg"]', tour('train-metrics')],
  },
  {
    id: 'value-loss',
    title: 'PPO · value loss',
    text: 'A value head predicts the return at each token, so the advantage is “better or worse than expected”. Its loss should fall as it learns the reward model’s scale; spikes mean the reward moved under it.',
    stage: 'train',
    target: ['[data-metric="loss/value_avg"]', tour('train-metrics')],
  },
  {
    id: 'entropy',
    title: 'PPO · entropy bonus',
    text: 'Entropy measures how spread out the next-token choices are. Collapsing entropy means the policy found one answer and repeats it; the entropy bonus (entCoef) pays it to keep exploring.',
    stage: 'train',
    target: ['[data-metric="policy/entropy_avg"]', tour('train-metrics')],
  },
  {
    id: 'try-it',
    title: 'Now run a scenario',
    text: 'Pick a scenario and press Run: it labels, trains a reward model and runs PPO, with a progress bar per stage. “Reward hacking” shows what happens when the reward is a bad proxy — move β and watch.',
    stage: 'start',
    target: [tour('scenarios')],
  },
];
