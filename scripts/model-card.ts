/**
 * Write `card.json` for a pretrained model from its `train-log.jsonl`, and
 * (with --ship) copy the model's files into `public/models/<name>/`.
 *
 *   npx tsx scripts/model-card.ts runs/tiny-gpt [--ship public/models/tiny-gpt]
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface ModelCardJson {
  description: string;
  corpus: string;
  licence: string;
  valLoss: number;
  valLossF32: number;
  valProcedure: string;
  trainSteps: number;
  trainTokens: number;
}

const DESCRIPTION =
  'A small GPT-2 style model pretrained in TF.js (wasm) by scripts/pretrain.ts on short English reviews, story openings and requests. It writes short lines, not essays.';
const CORPUS =
  'Our own seeded generator of reviews, story openings and requests (static/corpus, MIT) plus a sample of WordNet 3.0 example sentences (WordNet licence).';
const LICENCE = 'MIT (weights and generated corpus); WordNet 3.0 licence for its sentences (THIRD_PARTY_NOTICES.md).';

export function modelCardFromLog(logText: string, tokensPerStep: number): ModelCardJson {
  const lines = logText
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const final = [...lines].reverse().find((l) => l.final === true);
  if (!final) throw new Error('train-log.jsonl has no final line: did pretraining finish?');
  return {
    description: DESCRIPTION,
    corpus: CORPUS,
    licence: LICENCE,
    valLoss: final.valLoss as number,
    valLossF32: final.valLossF32 as number,
    valProcedure: final.valProcedure as string,
    trainSteps: final.step as number,
    trainTokens: (final.step as number) * tokensPerStep,
  };
}

export function writeModelCard(outDir: string, tokensPerStep: number): ModelCardJson {
  const card = modelCardFromLog(readFileSync(join(outDir, 'train-log.jsonl'), 'utf8'), tokensPerStep);
  writeFileSync(join(outDir, 'card.json'), JSON.stringify(card, null, 2) + '\n');
  return card;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [dir, flag, target] = process.argv.slice(2);
  if (!dir) throw new Error('usage: model-card.ts RUN_DIR [--ship public/models/NAME]');
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { n_positions: number };
  // The pretraining batch is 16 windows of blockSize tokens (scripts/pretrain.ts defaults).
  const card = writeModelCard(dir, 16 * config.n_positions);
  console.log(`card.json: val loss ${card.valLoss.toFixed(4)} nats/token after ${card.trainSteps} steps`);
  if (flag === '--ship' && target) {
    if (!existsSync(target)) mkdirSync(target, { recursive: true });
    for (const f of ['config.json', 'tokenizer.json', 'model.safetensors', 'train-log.jsonl', 'card.json'])
      copyFileSync(join(dir, f), join(target, f));
    console.log(`shipped to ${target}`);
  }
}
