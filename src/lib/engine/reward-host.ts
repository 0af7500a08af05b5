/**
 * The engine's reward models: the active one, training a new one (which
 * replaces the active one only when training succeeds), scoring and the
 * inspector's queries. Algorithms live in `src/lib/rlhf/reward-*.ts`.
 *
 * A reward model reads the token ids of the tokenizer it was trained with. After another model is
 * loaded (a Hub checkpoint, or the bundled one again after a reload) the active reward model may
 * belong to another vocabulary: every use checks the loaded tokenizer against the model's
 * vocabulary size and, when the state has one, its tokenizer fingerprint, and refuses with a
 * message instead of scoring ids it never saw.
 */
import type { TrainingPair } from '../data/records';
import type { BpeTokenizer } from '../model/tokenizer';
import type { GPT } from '../model/gpt';
import { REWARD_SETTINGS } from '../rlhf/reward-config';
import { RewardModel, rewardInputIds, type RewardModelState } from '../rlhf/reward-model';
import {
  misclassified,
  prefixRewards,
  trainRewardModel,
  type RewardTrainEvent,
  type RewardTrainResult,
} from '../rlhf/reward-train';
import { NotReadyError } from './errors';

const fingerprints = new WeakMap<BpeTokenizer, string>();

/**
 * A short fingerprint of a tokenizer: its size, end-of-text id and every token's string (FNV-1a,
 * 32 bits, hex). Two tokenizers with one vocabulary get the same one. Cached per tokenizer.
 */
export function tokenizerFingerprint(tok: BpeTokenizer): string {
  let f = fingerprints.get(tok);
  if (f) return f;
  let h = 0x811c9dc5;
  const add = (s: string) => {
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ 0xff, 0x01000193); // separator
  };
  add(`${tok.vocabSize}:${tok.eotId}`);
  for (let id = 0; id < tok.vocabSize; id++) add(tok.idToTokenString(id));
  f = `v${tok.vocabSize}-${(h >>> 0).toString(16).padStart(8, '0')}`;
  fingerprints.set(tok, f);
  return f;
}
import type { RewardModelSummary, RewardTrainRequest, TokenReward, WrongPair } from './types';

export class RewardHost {
  active: RewardModel | null = null;
  summary: RewardModelSummary | null = null;
  /** The active model's weights in JS, to rebuild it after its backend was restarted (`rebuild`). */
  private state: RewardModelState | null = null;

  private encoder(tok: BpeTokenizer) {
    return (prompt: string, response: string) => rewardInputIds(tok, prompt, response);
  }

  async train(
    policy: GPT,
    tok: BpeTokenizer,
    req: RewardTrainRequest,
    onEvent: ((e: RewardTrainEvent) => void) | undefined,
    checkpoint: () => Promise<void>,
  ): Promise<{ summary: RewardModelSummary; state: RewardModelState }> {
    const { id: _id, name: _name, pairs, recordIds: _records, ...settings } = req;
    const config = REWARD_SETTINGS.validate(settings);
    const rm = RewardModel.fromPolicy(policy, { mode: config.mode, seed: config.seed, pooling: config.pooling });
    let result: RewardTrainResult;
    try {
      result = await trainRewardModel(rm, pairs, { ...config, encode: this.encoder(tok) }, onEvent, checkpoint);
    } catch (e) {
      rm.dispose(); // the previous reward model stays active
      throw e;
    }
    this.active?.dispose();
    this.active = rm;
    const summary: RewardModelSummary = {
      id: req.id,
      name: req.name,
      createdAt: Date.now(),
      mode: result.mode,
      pairs: req.pairs.length,
      trainPairs: result.split.train.length,
      valPairs: result.split.val.length,
      bestEpoch: result.bestEpoch,
      accuracy: result.best.accuracy,
      evalAccuracy: result.best.eval_accuracy ?? null,
      normalisation: result.normalisation,
      seconds: result.seconds,
      recordIds: req.recordIds,
      valPrompts: [...new Set(result.split.val.map((p) => p.prompt))],
    };
    this.summary = summary;
    this.state = { ...(await rm.getState()), tokenizer: tokenizerFingerprint(tok) };
    return { summary, state: this.state };
  }

  /** Make a saved reward model the active one. */
  activate(state: RewardModelState, summary: RewardModelSummary): void {
    const rm = RewardModel.fromState(state);
    this.active?.dispose();
    this.active = rm;
    this.summary = summary;
    this.state = state;
  }

  /** After the backend under it was restarted: build the active reward model again from its kept weights. */
  rebuild(): void {
    try {
      this.active?.dispose();
    } catch {
      /* its tensors died with the backend */
    }
    this.active = this.state ? RewardModel.fromState(this.state) : null;
    if (!this.active) this.summary = null;
  }

  require(): RewardModel {
    if (!this.active) throw new NotReadyError('No reward model yet: train one on the Reward model page first.');
    return this.active;
  }

  /** The active reward model, to score text of `tok`: NotReadyError when it was trained with another tokenizer. */
  requireFor(tok: BpeTokenizer): RewardModel {
    const rm = this.require();
    const name = this.summary ? `"${this.summary.name}"` : 'The active reward model';
    const V = rm.config.vocabSize;
    const fix = 'load the model it was trained on (Model page), or train a reward model on this one.';
    if (V !== tok.vocabSize)
      throw new NotReadyError(
        `The reward model ${name} was trained on a model with ${V.toLocaleString('en')} tokens, but the loaded model has ${tok.vocabSize.toLocaleString('en')}: ${fix}`,
      );
    const trained = this.state?.tokenizer;
    if (trained && trained !== tokenizerFingerprint(tok))
      throw new NotReadyError(
        `The reward model ${name} was trained with another tokenizer than the loaded model's (both have ${V.toLocaleString('en')} tokens): ${fix}`,
      );
    return rm;
  }

  /** Normalised rewards of responses to one prompt each. */
  async score(tok: BpeTokenizer, items: { prompt: string; response: string }[]): Promise<number[]> {
    const rm = this.requireFor(tok);
    const raw = await rm.score(items.map((it) => rewardInputIds(tok, it.prompt, it.response)));
    const { gain, bias } = rm.normalisation;
    return raw.map((r) => r * gain + bias);
  }

  /** The normalised reward of every prefix of the response: how each token moved the score. */
  async tokenRewards(tok: BpeTokenizer, prompt: string, response: string): Promise<TokenReward[]> {
    const rm = this.requireFor(tok);
    const promptIds = [tok.eotId, ...tok.encodePrompt(prompt).ids];
    const responseIds = tok.encode(response);
    const all = [...promptIds, ...responseIds];
    const rewards = await prefixRewards(rm, all);
    const { gain, bias } = rm.normalisation;
    const norm = rewards.map((r) => r * gain + bias);
    const before = norm[promptIds.length - 1];
    return responseIds.map((id, i) => {
      const r = norm[promptIds.length + i];
      const prev = i === 0 ? before : norm[promptIds.length + i - 1];
      return { id, text: tok.decodeToken(id), reward: r, delta: r - prev };
    });
  }

  async wrongPairs(tok: BpeTokenizer, pairs: TrainingPair[]): Promise<WrongPair[]> {
    const rm = this.requireFor(tok);
    const wrong = await misclassified(rm, pairs, this.encoder(tok));
    const { gain } = rm.normalisation;
    return wrong.map((w) => ({
      prompt: w.pair.prompt,
      chosen: w.pair.chosen,
      rejected: w.pair.rejected,
      chosenReward: w.chosenReward * gain,
      rejectedReward: w.rejectedReward * gain,
    }));
  }

  dispose(): void {
    this.active?.dispose();
    this.active = null;
    this.state = null;
  }
}
