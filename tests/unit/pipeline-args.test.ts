/**
 * The command line of scripts/experiments/pipeline.ts (scripts/experiments/pipeline-algos.ts):
 * `--algo` names one or several algorithms of the table, `--iterations` per algorithm,
 * `--seconds ppo`, and `--reward-fn FILE.js[=WEIGHT]` files checked (compiled and tried on two
 * completions) before any training, each bad file refused with a message naming it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  configFor,
  loadRewardFnFile,
  parsePipelineArgs,
  PIPELINE_ALGO_NAMES,
  PIPELINE_ALGOS,
  PipelineArgsError,
  RewardFnFileError,
} from '../../scripts/experiments/pipeline-algos';

const bad = (argv: string[], re: RegExp) => {
  expect(() => parsePipelineArgs(argv)).toThrow(PipelineArgsError);
  expect(() => parsePipelineArgs(argv)).toThrow(re);
};

describe('pipeline command line', () => {
  it('defaults: PPO alone, 100 iterations, the issue-6 task (300 pairs, noise 0.1), the reward model alone', () => {
    const a = parsePipelineArgs([]);
    expect(a).toMatchObject({
      algos: ['ppo'],
      iterations: { ppo: 100 },
      pairs: 300,
      noise: 0.1,
      seconds: null,
      rmWeight: 1,
      rewardFns: [],
      config: {},
      out: 'runs/pipeline',
    });
  });

  it('--algo takes any algorithm of the table, or several; iterations for all or per algorithm', () => {
    expect(PIPELINE_ALGO_NAMES).toEqual(['ppo', 'grpo', 'rloo', 'online-dpo']);
    expect(parsePipelineArgs(['--algo', 'online-dpo']).algos).toEqual(['online-dpo']);
    expect(parsePipelineArgs(['--algo', 'ppo,online-dpo', '--seconds', 'ppo']).seconds).toBe('ppo');
    expect(parsePipelineArgs(['--algo', 'grpo']).algos).toEqual(['grpo']);
    const a = parsePipelineArgs(['--algo', 'PPO, grpo,rloo', '--iterations', '7']);
    expect(a.algos).toEqual(['ppo', 'grpo', 'rloo']);
    expect(a.iterations).toEqual({ ppo: 7, grpo: 7, rloo: 7 });
    const b = parsePipelineArgs(['--algo', 'grpo,ppo', '--iterations', 'ppo=100,grpo=150']);
    expect(b.iterations).toEqual({ ppo: 100, grpo: 150 });
    expect(parsePipelineArgs(['--algo', 'ppo,grpo', '--seconds', 'ppo']).seconds).toBe('ppo');
    expect(parsePipelineArgs(['--algo', 'rloo', '--seconds', '90']).seconds).toBe(90);
  });

  it('bad values name the option and why', () => {
    bad(['--algo', 'dpo'], /--algo: unknown algorithm "dpo"; one of ppo, grpo, rloo, online-dpo/);
    bad(['--algo', 'grpo,grpo'], /named twice/);
    bad(['--algo', ','], /--algo: name one of/);
    bad(['--iterations', '0'], /--iterations: must be a whole number ≥ 1, got "0"/);
    bad(['--algo', 'ppo,grpo', '--iterations', 'ppo=10'], /give grpo=N too/);
    bad(['--algo', 'ppo', '--iterations', 'rloo=10'], /"rloo" is not one of the algorithms named by --algo/);
    bad(['--seconds', 'ppo'], /--seconds ppo needs --algo to start with ppo/);
    bad(['--algo', 'grpo,ppo', '--seconds', 'ppo'], /start with ppo/);
    bad(['--seconds=-1'], /--seconds must be above 0/);
    bad(['--pairs', 'many'], /--pairs must be a number, got "many"/);
    bad(['--noise', '2'], /--noise must be in \[0, 1\]/);
    bad(['--config', '{"lr":'], /--config must be a JSON object/);
    bad(['--config', '[1]'], /--config must be a JSON object/);
    bad(['--rm-weight', '0'], /--rm-weight 0 leaves no reward: add --reward-fn/);
    bad(['--typo', '1'], /typo/);
  });

  it('--config: flat for every algorithm, or keyed by algorithm', () => {
    expect(configFor({ lr: 1 }, 'ppo')).toEqual({ lr: 1 });
    const keyed = { ppo: { klCoef: 0.1 }, grpo: { beta: 0.1 } };
    expect(configFor(keyed, 'grpo')).toEqual({ beta: 0.1 });
    expect(configFor(keyed, 'rloo')).toEqual({});
    expect(() => configFor({ grpo: 3 }, 'grpo')).toThrow(/"grpo" must be an object of grpo settings/);
  });

  it("each algorithm reads its settings through its own table (the app's validation and errors)", () => {
    expect(PIPELINE_ALGOS.grpo.validate({ seed: 2 })).toMatchObject({ seed: 2, lossType: 'dapo' });
    expect(PIPELINE_ALGOS.rloo.sampling(PIPELINE_ALGOS.rloo.validate({ maxCompletionLength: 9 }))).toEqual({
      maxNewTokens: 9,
      temperature: 0.7,
    });
    expect(() => PIPELINE_ALGOS.grpo.validate({ klCoef: 0.1 })).toThrow(/GRPO/);
    const odpo = PIPELINE_ALGOS['online-dpo'].validate({ seed: 4, maxNewTokens: 12, temperature: 0.9 });
    expect(odpo).toMatchObject({ seed: 4, lossType: 'sigmoid' });
    expect(PIPELINE_ALGOS['online-dpo'].sampling(odpo)).toEqual({ maxNewTokens: 12, temperature: 0.9 });
    expect(() => PIPELINE_ALGOS['online-dpo'].validate({ numGenerations: 4 })).toThrow(/Online DPO/);
    expect(() => PIPELINE_ALGOS.ppo.validate({ beta: 0.1 })).toThrow();
  });
});

describe('--reward-fn files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'reward-fn-'));
  const file = (name: string, code: string) => {
    const p = join(dir, name);
    writeFileSync(p, code);
    return p;
  };

  it('a good file becomes a reward function named after it, with its weight', async () => {
    const p = file(
      'ends-with-bang.js',
      'function reward(prompts, completions) {\n  return completions.map((c) => (c.endsWith("!") ? 1 : 0));\n}\n',
    );
    expect(await loadRewardFnFile(p)).toEqual({
      name: 'ends-with-bang',
      code: expect.stringContaining('endsWith'),
      weight: 1,
    });
    expect((await loadRewardFnFile(`${p}=0.5`)).weight).toBe(0.5);
    const arrow = file(
      'my reward.v2.js',
      'const reward = (p, c, extra) => extra.completionIds.map((ids) => -ids.length);',
    );
    expect((await loadRewardFnFile(arrow)).name).toBe('my_reward_v2');
  });

  it('every kind of bad file is refused before training, naming the file and what is wrong', async () => {
    const cases: [string, string, RegExp][] = [
      [
        'syntax.js',
        'function reward(p, c) {\n  return c.map((x) => x.length +);\n}',
        /syntax\.js: Reward function "syntax", line 2: SyntaxError/,
      ],
      [
        'missing.js',
        'function score(p, c) { return c.map(() => 0); }',
        /missing\.js: .*must define a function named reward/,
      ],
      [
        'throws.js',
        'function reward(p, c) {\n  throw new Error("boom");\n}',
        /throws\.js: Reward function "throws", line 2: Error: boom/,
      ],
      ['short.js', 'function reward(p, c) { return [1]; }', /short\.js: .*returned 1 scores for 2 completions/],
      ['nan.js', 'function reward(p, c) { return c.map(() => NaN); }', /nan\.js: .*score 0 is NaN/],
      ['text.js', 'function reward(p, c) { return "1,1"; }', /text\.js: .*not an array of 2 numbers/],
    ];
    for (const [name, code, re] of cases) {
      const p = file(name, code);
      await expect(loadRewardFnFile(p)).rejects.toThrow(RewardFnFileError);
      await expect(loadRewardFnFile(p)).rejects.toThrow(re);
    }
    await expect(loadRewardFnFile(join(dir, 'nope.js'))).rejects.toThrow(
      /--reward-fn .*nope\.js: cannot read the file \(ENOENT\)/,
    );
    await expect(
      loadRewardFnFile(`${file('w.js', 'function reward(p,c){return c.map(()=>0)}')}=heavy`),
    ).rejects.toThrow(/the weight after "=" must be a number, got "heavy"/);
    await expect(loadRewardFnFile('x.js', 0, () => ' ')).rejects.toThrow(/has no code/);
  });
});

describe('pipeline.ts end to end', () => {
  it('--algo grpo,online-dpo: both train on the same reward function and write summaries of one shape', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pipeline-'));
    try {
      const fn = join(dir, 'words.js');
      writeFileSync(
        fn,
        'function reward(prompts, completions) {\n  return completions.map((c) => c.length / 100);\n}\n',
      );
      const out = join(dir, 'out');
      execFileSync(
        'npx',
        [
          'tsx',
          'scripts/experiments/pipeline.ts',
          ...['--algo', 'grpo,online-dpo', '--rm-weight', '0', '--reward-fn', fn],
          ...['--iterations', 'grpo=1,online-dpo=2', '--eval-samples', '1', '--out', out],
        ],
        { stdio: 'pipe' },
      );
      const read = (p: string) => JSON.parse(readFileSync(join(out, p), 'utf8')) as Record<string, unknown>;
      const grpo = read('grpo/summary.json');
      const odpo = read('online-dpo/summary.json');
      expect(Object.keys(odpo).sort()).toEqual(Object.keys(grpo).sort());
      expect(odpo).toMatchObject({ algo: 'online-dpo', iterations: 2, rm: null, pairs: 0 });
      expect(odpo.config).toMatchObject({ beta: expect.any(Number), lossType: 'sigmoid' });
      expect(odpo.config).toHaveProperty('missingEosPenalty');
      const history = odpo.history as Record<string, number>[];
      expect(history.map((m) => m.iteration)).toEqual([0, 1]);
      for (const m of history) {
        expect(Number.isFinite(m['objective/kl'])).toBe(true);
        expect(m.wall_s).toBeGreaterThan(0);
      }
      expect(Number.isFinite(odpo.riseInBaseStd as number)).toBe(true);
      expect((odpo.after as { rewardFunctions: Record<string, number> }).rewardFunctions.words).toBeGreaterThan(0);
      const log = readFileSync(join(out, 'online-dpo/log.jsonl'), 'utf8').trim().split('\n');
      expect(log).toHaveLength(2);
      const all = read('summary.json').algorithms as { algo: string }[];
      expect(all.map((r) => r.algo)).toEqual(['grpo', 'online-dpo']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
