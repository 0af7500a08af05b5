import { mount } from 'svelte';
import './app.css';
import App from './ui/App.svelte';
import { engineState } from './state/engine.svelte';

const target = document.getElementById('app');
if (!target) throw new Error('#app is missing from index.html');
mount(App, { target });

// A handle for the browser console (and the end-to-end tests): `rlhf.engine.engine.probe()`.
(globalThis as unknown as { rlhf: unknown }).rlhf = { engine: engineState };
