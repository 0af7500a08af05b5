/**
 * Generalized Advantage Estimation on plain arrays (GAE runs after the rollout, no gradients).
 *
 * Follows:
 *  - Schulman et al. 2016, "High-Dimensional Continuous Control Using Generalized Advantage
 *    Estimation": δ_t = r_t + γ·V_{t+1} − V_t, Â_t = Σ_l (γλ)^l δ_{t+l}, computed backwards as
 *    Â_t = δ_t + γλ·Â_{t+1}.
 *  - TRL `trl/trainer/ppo_trainer.py`: the reversed loop over response positions, next value 0
 *    after the last position, returns = advantages + values (before whitening).
 *  - Huang et al. 2024, "The N Implementation Details of RLHF with PPO": values and rewards of
 *    padding are zeroed so the last real token bootstraps from 0 (the episode ends there).
 *
 * Masks are expected right-padded (1…1 0…0 per row). Rewards and values where mask is 0 are
 * treated as 0, and advantages and returns come out 0 there. Whitening the advantages is a
 * separate step: `whiten(advantages, mask)`.
 */
import { checkSameShape, type Matrix } from './whiten';

export interface GaeResult {
  /** [B][T] Â_t (not whitened). */
  advantages: Matrix;
  /** [B][T] Â_t + V_t, the value-function target. */
  returns: Matrix;
}

export function gae(rewards: Matrix, values: Matrix, mask: Matrix, gamma: number, lam: number): GaeResult {
  checkSameShape('gae', rewards, values, mask);
  const advantages: Matrix = [];
  const returns: Matrix = [];
  for (let b = 0; b < rewards.length; b++) {
    const T = rewards[b].length;
    const m = mask[b];
    const v = values[b].map((x, t) => (m[t] === 0 ? 0 : x));
    const adv = new Array<number>(T).fill(0);
    let last = 0;
    for (let t = T - 1; t >= 0; t--) {
      const r = m[t] === 0 ? 0 : rewards[b][t];
      const next = t < T - 1 ? v[t + 1] : 0;
      const delta = r + gamma * next - v[t];
      last = delta + gamma * lam * last;
      adv[t] = last;
    }
    advantages.push(adv.map((a, t) => (m[t] === 0 ? 0 : a)));
    returns.push(adv.map((a, t) => (m[t] === 0 ? 0 : a + v[t])));
  }
  return { advantages, returns };
}
