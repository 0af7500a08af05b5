/**
 * SFT settings (TRL `SFTConfig`'s training arguments, camel-cased): the shared offline rows
 * (offline-config.ts) with SFT's defaults. Read by the SFT form, the URL (`sft…`), the engine's
 * tune host and `trainSft`.
 */
import { settingsTable } from '../settings/table';
import { offlineError, offlineFields, type OfflineConfig } from './offline-config';

export type SftConfig = OfflineConfig;

/**
 * 10 epochs at 3e-4: a handful of demonstrations on a 1M-parameter model needs many passes and a
 * higher rate than TRL's 2e-5 to move the samples (what the Train page has offered since SFT was
 * added; the library's 3 epochs at 1e-4 barely changed them).
 */
export const SFT_SETTINGS = settingsTable<SftConfig>(
  offlineFields({ epochs: 10, learningRate: 3e-4, batchSize: 8, why: 'a few demonstrations need many passes' }),
  { what: 'SFT', urlPrefix: 'sft', error: offlineError('SFT') },
);
