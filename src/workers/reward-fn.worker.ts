// The reward-function worker: the user's JavaScript runs here, away from the page and the engine.
// It keeps its own postMessage, takes the network and storage away, then answers batches.
import { lockDown, RewardEvaluator, type RewardBatchMessage } from '../lib/engine/reward-sandbox';

const post = self.postMessage.bind(self);
const evaluator = new RewardEvaluator();
self.addEventListener('message', (e: MessageEvent<RewardBatchMessage>) => {
  const id = e.data.id;
  void evaluator.reply(e.data, (started) => post({ id, started })).then(post);
});
lockDown(self);
post({ id: 0, ok: true, parts: [] }); // ready
