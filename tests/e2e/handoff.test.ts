/**
 * Hand-off bundle (issue 7.6): import a few preference pairs, download the bundle from the Data
 * page, unzip it here with our store-only reader, and check that every JSONL line parses and has
 * exactly TRL's keys (prompt, chosen, rejected), that config.json is a GPT2Config and that
 * model.safetensors has a valid header with GPT2LMHeadModel names. Asking for the PPO policy
 * before any run is a clear error and downloads nothing. With a trained reward model the bundle
 * carries it as GPT2ForSequenceClassification with TRL GRPO / RLOO configs, which
 * scripts/golden/check_handoff.py accepts; a mean-pooled one is flagged and its configs use
 * rlhf_reward.py.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { labelWithSentimentBot, openApp } from './harness';
import { readZip } from '../../src/lib/data/zip';

const PAIRS = [
  { prompt: 'The movie was', chosen: ' great, I loved every minute.', rejected: ' awful and slow.' },
  { prompt: 'Say "hi"', chosen: ' hi there', rejected: ' <script>alert(1)</script>' },
  { prompt: 'Café ☕ review:', chosen: ' lovely coffee', rejected: ' cold 😞' },
  { prompt: 'Once upon a time,', chosen: ' a fox lived by the river.', rejected: ' the end' },
];

describe('hand-off bundle', () => {
  it('downloads a ZIP whose JSONL lines carry exactly the TRL keys, with a valid GPT-2 model', async () => {
    const app = await openApp('/#/data');
    const { page } = app;
    try {
      const jsonl = PAIRS.map((p) => JSON.stringify(p)).join('\n') + '\n';
      await page.setInputFiles('[data-testid="import-file"]', {
        name: 'prefs.jsonl',
        mimeType: 'application/jsonl',
        buffer: Buffer.from(jsonl),
      });
      await page.waitForSelector('[data-testid="import-preview"]', { timeout: 60_000 });
      assert.equal(await page.textContent('[data-testid="import-kind"]'), 'preference');
      await page.click('[data-testid="import-commit"]');
      await page.waitForFunction(
        (n) => document.querySelector('[data-testid="count-all"]')?.textContent === String(n),
        PAIRS.length,
        { timeout: 30_000 },
      );

      const button = page.locator('[data-testid="handoff-download"]');
      await button.waitFor();
      await page.waitForFunction(
        () => !(document.querySelector('[data-testid="handoff-download"]') as HTMLButtonElement).disabled,
        undefined,
        { timeout: 90_000 },
      );

      // The PPO policy before any run: a named, readable error, and no download.
      await page.selectOption('[data-testid="handoff-model"]', 'policy');
      let downloads = 0;
      page.on('download', () => downloads++);
      await button.click();
      await page.waitForSelector('[data-testid="handoff-error"]', { timeout: 30_000 });
      assert.match((await page.textContent('[data-testid="handoff-error"]'))!, /no PPO policy yet/);
      assert.equal(downloads, 0);

      await page.selectOption('[data-testid="handoff-model"]', 'base');
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), button.click()]);
      assert.match(download.suggestedFilename(), /^rlhf-handoff-tiny-gpt-base-\d{4}-\d\d-\d\d\.zip$/);
      const files = readZip(new Uint8Array(readFileSync((await download.path())!)));
      await page.waitForSelector('[data-testid="handoff-status"]');
      assert.match(
        (await page.textContent('[data-testid="handoff-status"]'))!,
        /^4 preference pair\(s\) from 4 record/,
      );

      for (const name of [
        'README.md',
        'data/preferences.jsonl',
        'model/config.json',
        'model/model.safetensors',
        'model/tokenizer.json',
        'configs/trl_reward.yaml',
        'configs/trl_dpo.yaml',
      ])
        assert.ok(files.has(name), `${name} is in the bundle`);
      const dec = new TextDecoder('utf-8', { fatal: true });

      // Every line parses and has exactly prompt, chosen, rejected; the texts are ours.
      const lines = dec.decode(files.get('data/preferences.jsonl')).split('\n');
      assert.equal(lines.pop(), '');
      const rows = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      for (const r of rows) assert.deepEqual(Object.keys(r).sort(), ['chosen', 'prompt', 'rejected']);
      const key = (r: Record<string, unknown>) => JSON.stringify([r.prompt, r.chosen, r.rejected]);
      assert.deepEqual(rows.map(key).sort(), PAIRS.map(key).sort());

      const config = JSON.parse(dec.decode(files.get('model/config.json'))) as Record<string, unknown>;
      assert.equal(config.model_type, 'gpt2');
      assert.deepEqual(config.architectures, ['GPT2LMHeadModel']);
      assert.equal(config.vocab_size, 1281);

      // safetensors: u64 header length, JSON header, contiguous F32 tensors filling the file.
      const st = files.get('model/model.safetensors')!;
      const n = Number(new DataView(st.buffer, st.byteOffset).getBigUint64(0, true));
      const header = JSON.parse(dec.decode(st.subarray(8, 8 + n))) as Record<
        string,
        { dtype: string; shape: number[]; data_offsets: [number, number] }
      >;
      assert.equal((header.__metadata__ as unknown as Record<string, string>).format, 'pt');
      delete header.__metadata__;
      const entries = Object.entries(header).sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
      assert.equal(entries.length, 52);
      let end = 0;
      for (const [name, e] of entries) {
        assert.match(
          name,
          /^transformer\.(wte|wpe|ln_f|h\.\d+\.(ln_[12]|attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj))\./,
        );
        assert.equal(e.dtype, 'F32');
        assert.equal(e.data_offsets[0], end);
        end = e.data_offsets[1];
        assert.equal(end - e.data_offsets[0], 4 * e.shape.reduce((a, b) => a * b, 1));
      }
      assert.equal(8 + n + end, st.length);
      assert.deepEqual(header['transformer.h.0.attn.c_attn.weight'].shape, [128, 384]);

      assert.match(dec.decode(files.get('README.md')), /--chosen_key chosen --rejected_key rejected/);
      assert.deepEqual(app.foreignRequests, []);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
  it('Train page: diversity of the eval samples is plotted; the bundle then carries the PPO policy', async () => {
    const app = await openApp('/#/train');
    const { page } = app;
    const setNumber = async (id: string, v: number) => {
      const input = page.locator(`[data-testid="${id}"]`);
      await input.fill(String(v));
      await input.dispatchEvent('change');
    };
    try {
      await page.waitForSelector('[data-testid="ppo-start"]:not([disabled])', { timeout: 120_000 });
      await setNumber('cfg-batchSize', 4);
      await setNumber('cfg-maxNewTokens', 8);
      await setNumber('cfg-ppoEpochs', 1);
      await setNumber('eval-every', 1);
      await page.click('[data-testid="ppo-start"]');
      const sel = (k: string) => `[data-testid="diversity-latest"] [data-metric="${k}"] output`;
      await page.waitForFunction(
        (s) => /\d/.test(document.querySelector(s)?.textContent ?? ''),
        sel('eval/self_bleu'),
        {
          timeout: 180_000,
        },
      );
      await page.click('[data-testid="ppo-pause"]');
      await page.waitForSelector('[data-testid="ppo-resume"]', { timeout: 180_000 });
      for (const k of ['eval/distinct_1', 'eval/distinct_2', 'eval/distinct_3', 'eval/self_bleu']) {
        const v = Number(await page.textContent(sel(k)));
        assert.ok(v >= 0 && v <= 1, `${k} = ${v} is in [0, 1]`);
      }
      assert.equal((await page.locator('[data-testid="diversity-chart"] svg path').count()) >= 4, true);
      const iteration = Number(await page.textContent('[data-testid="ppo-iteration"]'));

      await page.click('nav a[href="#/data"]');
      await page.waitForSelector('[data-testid="handoff-download"]:not([disabled])', { timeout: 60_000 });
      const weightsOf = async (which: 'base' | 'policy') => {
        await page.selectOption('[data-testid="handoff-model"]', which);
        const [d] = await Promise.all([
          page.waitForEvent('download', { timeout: 60_000 }),
          page.click('[data-testid="handoff-download"]'),
        ]);
        return { name: d.suggestedFilename(), files: readZip(new Uint8Array(readFileSync((await d.path())!))) };
      };
      const policy = await weightsOf('policy');
      assert.match(policy.name, new RegExp(`^rlhf-handoff-tiny-gpt-policy-it${iteration}-`));
      assert.match(new TextDecoder().decode(policy.files.get('README.md')), /the PPO policy after \d+ iteration/);
      assert.match(new TextDecoder().decode(policy.files.get('README.md')), /No preference pairs yet/);
      const base = await weightsOf('base');
      assert.notDeepEqual(policy.files.get('model/model.safetensors'), base.files.get('model/model.safetensors'));
      assert.deepEqual(app.foreignRequests, []);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
  it('with a reward model: GPT2ForSequenceClassification + TRL GRPO / RLOO configs; mean pooling is flagged', async () => {
    const app = await openApp('/#/reward');
    const { page } = app;
    const dec = new TextDecoder();
    const train = async (pooling: 'last' | 'mean', n: number) => {
      await page.click('nav a[href="#/reward"]');
      await page.click('text=Reload data');
      await page.getByLabel('Pooling').selectOption(pooling);
      await page.click('[data-testid="train-rm"]');
      await page.waitForFunction((k) => document.querySelectorAll('[data-testid="rm-item"]').length === k, n, {
        timeout: 300_000,
      });
    };
    const download = async () => {
      await page.click('nav a[href="#/data"]');
      await page.waitForSelector('[data-testid="handoff-download"]:not([disabled])', { timeout: 120_000 });
      await page.waitForSelector('[data-testid="handoff-reward"]');
      assert.equal(await page.isChecked('[data-testid="handoff-reward"]'), true);
      const [d] = await Promise.all([
        page.waitForEvent('download', { timeout: 60_000 }),
        page.click('[data-testid="handoff-download"]'),
      ]);
      await page.waitForSelector('[data-testid="handoff-status"]:has-text("With the reward model")');
      return readZip(new Uint8Array(readFileSync((await d.path())!)));
    };
    try {
      await page.waitForSelector('[data-testid="stage-reward"]');
      await labelWithSentimentBot(page, 20);

      // A last-token reward model: the HF class scores as the tab does.
      await train('last', 1);
      const files = await download();
      assert.equal(await page.locator('[data-testid="handoff-reward-mean"]').count(), 0);
      for (const f of [
        'reward_model/config.json',
        'reward_model/model.safetensors',
        'reward_model/tokenizer.json',
        'prompts/prompts.jsonl',
        'configs/trl_grpo.yaml',
        'configs/trl_rloo.yaml',
        'rlhf_reward.py',
      ])
        assert.ok(files.has(f), `${f} is in the bundle`);
      const cfg = JSON.parse(dec.decode(files.get('reward_model/config.json'))) as Record<string, unknown>;
      assert.deepEqual(cfg.architectures, ['GPT2ForSequenceClassification']);
      assert.equal(cfg.num_labels, 1);
      assert.equal(cfg.pad_token_id, 1280);
      for (const f of ['configs/trl_grpo.yaml', 'configs/trl_rloo.yaml'])
        assert.match(dec.decode(files.get(f)), /^reward_model_name_or_path: \.\/reward_model$/m);
      assert.match(dec.decode(files.get('configs/trl_grpo.yaml')), /^num_generations: 4$/m);
      const prompts = dec.decode(files.get('prompts/prompts.jsonl')).trim().split('\n');
      assert.ok(prompts.length >= 4, `${prompts.length} prompts`);
      for (const l of prompts) assert.match((JSON.parse(l) as { prompt: string }).prompt, /^<\|endoftext\|>\S/);

      // The independent PyTorch check accepts the names, shapes and config (when Debian's torch is here).
      const python = '/usr/bin/python3';
      let torch = existsSync(python);
      try {
        if (torch) execFileSync(python, ['-c', 'import torch'], { stdio: 'ignore' });
      } catch {
        torch = false;
      }
      if (torch) {
        const dir = mkdtempSync(join(tmpdir(), 'e2e-handoff-'));
        try {
          for (const [name, data] of files) {
            mkdirSync(dirname(join(dir, name)), { recursive: true });
            writeFileSync(join(dir, name), data);
          }
          const out = execFileSync(python, ['scripts/golden/check_handoff.py', dir], { encoding: 'utf8' });
          assert.match(out, /^ok: reward model: 53 tensors under GPT2ForSequenceClassification names$/m);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      } else console.log('skipped the PyTorch check: /usr/bin/python3 has no torch');

      // A mean-pooled reward model (the Reward page's default): flagged, and the configs use rlhf_reward.py.
      await train('mean', 2);
      const meanFiles = await download();
      await page.waitForSelector('[data-testid="handoff-reward-mean"]');
      assert.match(
        dec.decode(meanFiles.get('configs/trl_grpo.yaml')),
        /^reward_funcs:\n {2}- rlhf_reward\.reward_model$/m,
      );
      assert.match(dec.decode(meanFiles.get('README.md')), /Not the tab's scores from the HF class alone/);
      assert.deepEqual(app.foreignRequests, []);
      assert.deepEqual(app.errors, []);
    } finally {
      await app.close();
    }
  });
});
