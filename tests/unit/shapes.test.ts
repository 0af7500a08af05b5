/**
 * src/lib/model/shapes.ts, the TF-free table of parameter names and shapes, against the real
 * thing: the GPT built for the configs of the PyTorch-written fixtures (tests/fixtures/hf:
 * gpt2-tiny, llama-tiny with grouped-query attention, llama-tiny-untied with its own lm_head) has
 * exactly these parameters, in this order; its projections (lora.ts `linearModules`) are
 * `layerProjections` in every layer; the HF layouts are weights.ts's; and the LoRA counts the
 * page shows equal the adapters the model really gets.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { useBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import { linearModules } from '../../src/lib/model/lora';
import { loraParamCount } from '../../src/lib/model/lora-config';
import { hfTrunkShapes, layerPrefix, layerProjections, parameterShapes } from '../../src/lib/model/shapes';
import { configFromHF, hfParameterShapes } from '../../src/lib/model/weights';

const FIXTURES = ['gpt2-tiny', 'llama-tiny', 'llama-tiny-untied'];

function fixtureConfig(name: string) {
  return configFromHF(JSON.parse(readFileSync(`tests/fixtures/hf/${name}/config.json`, 'utf8')));
}

let made = 0;
beforeAll(() => useBackend('cpu'));

describe('shapes.ts is the GPT of each architecture', () => {
  for (const name of FIXTURES)
    it(`${name}: names, order and shapes of every parameter; projections per layer; HF layouts; LoRA counts`, () => {
      const config = fixtureConfig(name);
      const gpt = new GPT(config, { init: 'zeros', namePrefix: `shapes-${made++}/` });
      try {
        const real = [...gpt.params].map(([n, v]) => [n, v.shape]);
        expect([...parameterShapes(config)]).toEqual(real);

        // Every layer's projections, as the LoRA code finds them on the model.
        const modules = linearModules(gpt).filter((m) => /^(transformer\.h|model\.layers)\./.test(m.name));
        const expected = Array.from({ length: config.nLayer }, (_, i) =>
          layerProjections(config).map(([p, fin, fout]) => ({ name: layerPrefix(config, i) + p, in: fin, out: fout })),
        ).flat();
        expect(modules.map((m) => ({ name: m.name, in: m.in, out: m.out }))).toEqual(expected);

        // HF's layouts: weights.ts's (which the files are written and read with), less the LM head.
        const hf = hfParameterShapes(config);
        hf.delete('lm_head.weight');
        expect([...hfTrunkShapes(config)]).toEqual([...hf]);

        // The counts the page shows are the adapters the model gets.
        for (const targets of [null, config.arch === 'llama' ? ['q_proj', 'k_proj', 'down_proj'] : ['c_fc']]) {
          const lora = gpt.addAdapters({ r: 4, alpha: 8, dropout: 0, targetModules: targets });
          const n = lora.variables().reduce((a, v) => a + v.size, 0);
          expect(loraParamCount(config, { loraR: 4, loraTargetModules: targets })).toBe(n);
          gpt.removeAdapters();
        }
      } finally {
        gpt.dispose();
      }
    });

  it('the kv width and the untied head follow the config', () => {
    const llama = fixtureConfig('llama-tiny');
    expect(layerProjections(llama).find(([n]) => n === 'self_attn.k_proj')).toEqual(['self_attn.k_proj', 32, 16]);
    expect(parameterShapes(llama).has('lm_head.weight')).toBe(false);
    const untied = fixtureConfig('llama-tiny-untied');
    expect(parameterShapes(untied).get('lm_head.weight')).toEqual([32, 512]);
    expect(hfTrunkShapes(untied).has('lm_head.weight')).toBe(false);
    expect(hfTrunkShapes(untied).get('model.layers.1.mlp.down_proj.weight')).toEqual([32, 64]);
  });
});
