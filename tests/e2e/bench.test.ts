/** The benchmark harness runs (one quick iteration of everything on wasm), so `npm run bench` cannot rot. */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runBenchmarks } from '../../scripts/bench/run';

describe('npm run bench (smoke)', () => {
  it('measures every benchmark once in the worker and writes results.json', async () => {
    const out = join(tmpdir(), `bench-${process.pid}.json`);
    try {
      const { reports } = await runBenchmarks({ backends: ['wasm'], repeats: 1, quick: true, out, torch: false });
      assert.equal(reports.length, 1);
      const names = reports[0].rows.map((r) => r.name);
      for (const prefix of [
        'sample b1 cache',
        'sample b1 no cache',
        'train step',
        'reward-model step',
        'PPO iteration',
        'GRPO iteration',
        'RLOO iteration',
      ])
        assert.ok(
          names.some((n) => n.startsWith(prefix)),
          `missing ${prefix} in ${names.join(', ')}`,
        );
      for (const r of reports[0].rows)
        assert.ok(r.medianMs > 0 && Number.isFinite(r.medianMs), `${r.name}: ${r.medianMs}`);
      assert.equal(reports[0].rows.find((r) => r.name.startsWith('PPO'))!.tensorsGrowth, 0);
      // The critic-free trainers hold no value model: less memory than PPO's, and no tensor leak.
      const mb = (prefix: string) => reports[0].rows.find((r) => r.name.startsWith(prefix))!;
      for (const algo of ['GRPO', 'RLOO']) {
        assert.equal(mb(`${algo} iteration`).tensorsGrowth, 0);
        assert.ok(mb(`${algo} iteration`).value! < mb('PPO trainer memory').value!, `${algo} holds less than PPO`);
      }
      const saved = JSON.parse(readFileSync(out, 'utf8')) as { reports: unknown[]; browser: string };
      assert.equal(saved.reports.length, 1);
      assert.match(saved.browser, /\d+\./);
    } finally {
      rmSync(out, { force: true });
    }
  });
});
