// The worker is only a doorway: all logic lives in src/lib/engine.
import * as Comlink from 'comlink';
import { createEngine } from '../lib/engine/engine';
import { installErrorTransfer } from '../lib/engine/errors';

installErrorTransfer(); // errors keep their own data (e.g. PpoConfigError.fields) on the way out
Comlink.expose(createEngine());
