// The worker is only a doorway: all logic lives in src/lib/engine.
import * as Comlink from 'comlink';
import { createEngine } from '../lib/engine/engine';

Comlink.expose(createEngine());
