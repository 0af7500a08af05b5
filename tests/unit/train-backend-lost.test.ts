/**
 * A backend failure under a running PPO or GRPO run (the engine's `restartAfterFailedLoad`, or a
 * lost WebGPU device: `JobRegistry.failAll` → `DeviceLostError`): the Train page's state pauses
 * the run at its last save with one sentence that says so, overwrites no save, and Resume
 * rebuilds the run from that save and goes on. Real engine (cpu backend, the shipped model),
 * real IndexedDB (fake-indexeddb); the failure is the engine's own simulated wasm trap
 * (`debugTrapNextLoad`) during a model load while the run is training.
 */
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BUNDLED_MODEL, engineWithBundledModel } from './bundled-engine';
import { engineState } from '../../src/state/engine.svelte';
import { trainState } from '../../src/state/train.svelte';
import { groupState } from '../../src/state/group.svelte';
import { runStore } from '../../src/state/runs.svelte';
import type { ModelFiles } from '../../src/lib/engine/types';
import { defaultLabellerConfig } from '../../src/lib/rlhf/labellers';

const TRAP =
  'The cpu backend failed while building the model (memory access out of bounds (simulated by debugTrapNextLoad)); it was restarted';

function files(name: string): ModelFiles {
  const w = readFileSync(`${BUNDLED_MODEL}/model.safetensors`);
  return {
    name,
    source: 'bundled',
    config: readFileSync(`${BUNDLED_MODEL}/config.json`, 'utf8'),
    tokenizer: readFileSync(`${BUNDLED_MODEL}/tokenizer.json`, 'utf8'),
    weights: w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength) as ArrayBuffer,
  };
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 6000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

type TestEngine = Awaited<ReturnType<typeof engineWithBundledModel>>;

/** Plug an in-thread engine into the app's engine state (what `engineState.start` does in the page). */
async function useEngine(): Promise<TestEngine> {
  const engine = await engineWithBundledModel('cpu');
  (engineState as unknown as { handle: unknown }).handle = { engine, testHooks: engine, mode: 'in-thread' };
  return engine;
}

/** Fail the backend under whatever job is running: a trapped model load restarts it. */
async function crashBackend(engine: TestEngine): Promise<void> {
  expect(await engine.debugTrapNextLoad()).toBe(true);
  await expect(engine.loadModel(files('other'))).rejects.toThrow(TRAP);
}

const PROMPTS = ['The movie was', 'I think', 'The food'];

describe('a backend failure during a run', () => {
  it('pauses a PPO run at its last save, says so, keeps the save, and Resume goes on from it', async () => {
    const engine = await useEngine();
    trainState.checkpointEvery = 2;
    trainState.evalEvery = 1000;
    trainState.gold = 'none';
    trainState.rewardKind = 'labeller';
    const ok = await trainState.createRun({
      prompts: PROMPTS,
      evalPrompts: PROMPTS.slice(0, 1),
      config: { ...trainState.buildSetup().config, batchSize: 2, maxNewTokens: 4, miniBatches: 1, ppoEpochs: 1 },
    });
    expect(ok, trainState.lastError ?? '').toBe(true);
    await trainState.playUntil(2);
    expect(trainState.lastSavedIteration).toBe(2);
    const runId = trainState.runId!;

    // Iteration 3 finishes (not saved: checkpoints every 2), then the backend fails under iteration 4.
    const playing = trainState.play();
    await waitFor(() => trainState.iteration === 3 && trainState.busy, 'iteration 4 under way');
    await crashBackend(engine);
    await playing;

    expect(trainState.running).toBe(false);
    expect(trainState.backendLost).toBe(true);
    expect(trainState.created).toBe(true);
    expect(trainState.iteration).toBe(2);
    expect(trainState.lastError).toBe(
      `${TRAP}: the PPO run is paused at iteration 2, its last save; Resume continues it from there on the new backend.`,
    );
    expect(trainState.history.every((r) => r.step <= 2)).toBe(true);
    // The save is whole, not overwritten by the lost run's state.
    const saved = await (await runStore()).loadPpo(runId);
    expect(saved!.run.state.iteration).toBe(2);

    // Resume: rebuilt from the save on the restarted backend, and it trains on.
    await trainState.playUntil(3);
    expect(trainState.backendLost).toBe(false);
    expect(trainState.lastError).toBeNull();
    expect(trainState.iteration).toBe(3);
    expect(trainState.runId).toBe(runId);
    expect(trainState.lastSavedIteration).toBe(3);
    expect((await (await runStore()).loadPpo(runId))!.run.state.iteration).toBe(3);
    expect(trainState.history.filter((r) => r.metrics['objective/kl'] !== undefined).length).toBeGreaterThan(0);

    // The backend restarts while the run is paused: Resume finds the engine's run gone, says so, pauses at the save.
    await crashBackend(engine);
    await trainState.playUntil(4);
    expect(trainState.backendLost).toBe(true);
    expect(trainState.iteration).toBe(3);
    expect(trainState.lastError).toBe(
      'The engine no longer holds the PPO run (its backend was restarted while it was paused): the PPO run is paused at iteration 3, its last save; Resume continues it from there on the new backend.',
    );
    await trainState.playUntil(4);
    expect(trainState.backendLost).toBe(false);
    expect(trainState.iteration).toBe(4);
    await engine.ppoDispose(); // (`trainState.reset` waits on a Svelte effect, which does not run here)
  });

  it('pauses a GRPO run at its last save, says so, keeps the save, and Resume goes on from it', async () => {
    const engine = await useEngine();
    trainState.checkpointEvery = 2;
    trainState.rewardKind = 'labeller';
    groupState.algo = 'grpo';
    await groupState.createRun({
      algo: 'grpo',
      config: { numGenerations: 2, batchSize: 4, maxCompletionLength: 4, seed: 3 },
      prompts: PROMPTS,
      reward: { kind: 'labeller', labeller: defaultLabellerConfig('sentiment') },
      name: 'GRPO · test',
    });
    const runId = groupState.runId!;
    // Two iterations, pause (saved there), then the backend fails under the iteration after the next.
    trainState.checkpointEvery = 1000;
    let playing = groupState.play();
    await waitFor(() => groupState.iteration >= 2, 'iteration 2');
    groupState.pause();
    await playing;
    const at = groupState.lastSavedIteration!;
    expect(at).toBe(groupState.iteration);
    playing = groupState.play();
    await waitFor(() => groupState.iteration === at + 1, 'an unsaved iteration');
    await crashBackend(engine);
    await playing;

    expect(groupState.running).toBe(false);
    expect(groupState.backendLost).toBe(true);
    expect(groupState.created).toBe('grpo');
    expect(groupState.iteration).toBe(at);
    expect(groupState.error).toBe(
      `${TRAP}: the GRPO run is paused at iteration ${at}, its last save; Resume continues it from there on the new backend.`,
    );
    expect(groupState.history.every((r) => r.step < at)).toBe(true);
    expect((await (await runStore()).loadGroup(runId))!.run.state.iteration).toBe(at);

    // Resume (rebuild from the save), one iteration, pause.
    const resumed = groupState.play();
    await waitFor(() => groupState.iteration === at + 1, 'an iteration after the save');
    groupState.pause();
    await resumed;
    expect(groupState.backendLost).toBe(false);
    expect(groupState.error).toBeNull();
    expect(groupState.iteration).toBeGreaterThan(at);
    expect((await (await runStore()).loadGroup(runId))!.run.state.iteration).toBe(groupState.iteration);
    await groupState.reset();
  });
});
