/**
 * Errors through a real Comlink channel (a `MessageChannel`, as between the page and the engine
 * worker): every class the engine, the model layer and the trainers throw comes back as its
 * class, with its message and its own data (`PpoConfigError.fields`).
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as Comlink from 'comlink';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SettingsError } from '../../src/lib/settings/table';
import { GRPO_SETTINGS, GrpoConfigError } from '../../src/lib/rlhf/grpo-config';
import { RLOO_SETTINGS, RlooConfigError } from '../../src/lib/rlhf/rloo-config';
import { GroupDivergedError, GroupPhaseError } from '../../src/lib/rlhf/errors';
import { fileURLToPath } from 'node:url';
import {
  BackendInitError,
  DeviceLostError,
  EngineError,
  InvalidInputError,
  JobCancelledError,
  LabellerConfigError,
  ModelLoadError,
  NotReadyError,
  PpoConfigError,
  PpoDivergedError,
  PpoPhaseError,
  REVIVED_ERRORS,
  RewardTrainingError,
  TokenizerError,
  TuneDivergedError,
  TuneInputError,
  WeightsFormatError,
  RewardFunctionError,
  errorDetails,
  installErrorTransfer,
  reviveError,
} from '../../src/lib/engine/errors';
import { validatePpoConfig } from '../../src/lib/rlhf/ppo-config';
import { labellerFromConfig } from '../../src/lib/rlhf/labellers';

const thrown = (fn: () => unknown): Error => {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('did not throw');
};

/** One instance of every class, made the way the library makes them where that is cheap. */
const SAMPLES: [new (...a: never[]) => Error, Error][] = [
  [ModelLoadError, new ModelLoadError('config.json is not valid JSON.')],
  [WeightsFormatError, new WeightsFormatError('bad header')],
  [TokenizerError, new TokenizerError('bad tokenizer')],
  [EngineError, new EngineError('engine')],
  [BackendInitError, new BackendInitError('no backend')],
  [DeviceLostError, new DeviceLostError('lost')],
  [JobCancelledError, new JobCancelledError('cancelled')],
  [NotReadyError, new NotReadyError('load a model first')],
  [InvalidInputError, new InvalidInputError('Top-p must be above 0')],
  [TuneInputError, new TuneInputError('no pairs')],
  [TuneDivergedError, new TuneDivergedError('NaN loss')],
  [PpoDivergedError, new PpoDivergedError('NaN gradient')],
  [PpoPhaseError, new PpoPhaseError('update() before advantages()')],
  [RewardTrainingError, new RewardTrainingError('too few pairs')],
  [LabellerConfigError, thrown(() => labellerFromConfig({ kind: 'nope' } as never))],
  [PpoConfigError, thrown(() => validatePpoConfig({ klCoef: -1, clipRange: 'x', typo: 1 }))],
  [SettingsError, new SettingsError('toy', { n: 'must be a whole number ≥ 1, got 0' })],
  [GrpoConfigError, thrown(() => GRPO_SETTINGS.validate({ numGenerations: 1 }))],
  [RlooConfigError, thrown(() => RLOO_SETTINGS.validate({ beta: -1 }))],
  [GroupDivergedError, new GroupDivergedError('NaN loss')],
  [GroupPhaseError, new GroupPhaseError('update() before advantages()')],
  [RewardFunctionError, new RewardFunctionError('Reward function "f", line 2: TypeError: x.', 'f', 2, 'exception')],
];

describe('errors across a Comlink MessageChannel', () => {
  installErrorTransfer();
  const { port1, port2 } = new MessageChannel();
  let next: Error = new Error('unset');
  Comlink.expose(
    {
      fail(): never {
        throw next;
      },
      failWith(what: string): never {
        throw what; // not an Error: crosses as it is
      },
    },
    port1,
  );
  const remote = Comlink.wrap<{ fail(): Promise<never>; failWith(what: string): Promise<never> }>(port2);
  afterAll(() => {
    port1.close();
    port2.close();
  });

  const roundTrip = async (e: Error): Promise<Error> => {
    next = e;
    try {
      await remote.fail();
    } catch (got) {
      return reviveError(got);
    }
    throw new Error('the remote call did not throw');
  };

  it('every registered class is covered here', () => {
    expect(SAMPLES.map(([C]) => C.name).sort()).toEqual([...REVIVED_ERRORS].sort());
  });

  for (const [C, e] of SAMPLES) {
    it(`${C.name} comes back as ${C.name}`, async () => {
      expect(e).toBeInstanceOf(C); // the sample is real
      const back = await roundTrip(e);
      expect(back).not.toBe(e); // it really crossed (structured clone), not the same object
      expect(back).toBeInstanceOf(C);
      expect(back.name).toBe(C.name);
      expect(back.message).toBe(e.message);
    });
  }

  it('PpoConfigError keeps its fields (the UI shows each next to its input)', async () => {
    const e = SAMPLES.find(([C]) => C === PpoConfigError)![1] as PpoConfigError;
    expect(Object.keys(e.fields).sort()).toEqual(['_', 'clipRange', 'klCoef']);
    const back = (await roundTrip(e)) as PpoConfigError;
    expect(back).toBeInstanceOf(PpoConfigError);
    expect(back.fields).toEqual(e.fields);
    expect(back.message).toBe(e.message);
  });

  it('an unknown error stays a plain Error with its name; a thrown string stays a string', async () => {
    const odd = new Error('odd');
    odd.name = 'SomethingElseError';
    const back = await roundTrip(odd);
    expect(back.constructor).toBe(Error);
    expect(back.name).toBe('SomethingElseError');
    await expect(remote.failWith('plain text')).rejects.toBe('plain text');
  });

  it('RewardFunctionError keeps the function, its line and the kind of failure', async () => {
    const e = SAMPLES.find(([C]) => C === RewardFunctionError)![1] as RewardFunctionError;
    const back = (await roundTrip(e)) as RewardFunctionError;
    expect(back).toBeInstanceOf(RewardFunctionError);
    expect([back.fn, back.line, back.failure]).toEqual(['f', 2, 'exception']);
  });

  it('errorDetails carries own data only', () => {
    expect(errorDetails(new PpoDivergedError('x'))).toBeUndefined();
    expect(errorDetails(new PpoConfigError({ lr: 'must be > 0' }))).toEqual({ fields: { lr: 'must be > 0' } });
  });
});

/** `export class X extends …Error` in the layers below the engine interface. */
function exportedErrorClasses(): string[] {
  const root = fileURLToPath(new URL('../../src/lib/', import.meta.url));
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const ent of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (p.endsWith('.ts'))
        for (const m of readFileSync(p, 'utf8').matchAll(/export class (\w+) extends \w*Error\b/g)) out.push(m[1]);
    }
  };
  for (const layer of ['engine', 'model', 'rlhf', 'settings']) walk(join(root, layer));
  return out.sort();
}

describe('the registry', () => {
  it('holds every error class the engine, the model layer and the trainers export', () => {
    const found = exportedErrorClasses();
    expect(found.length).toBeGreaterThanOrEqual(16);
    expect(found.filter((n) => !REVIVED_ERRORS.includes(n))).toEqual([]);
  });
});
