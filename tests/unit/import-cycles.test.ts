/**
 * No import circles in src/: walk the relative imports (`import … from`, `export … from`,
 * `import('…')` types and dynamic imports) of every .ts and .svelte file and look for a cycle
 * with a depth-first search. A circle makes module order matter (a class used before its module
 * ran) and keeps layers from being read on their own.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(ts|svelte)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The file a relative specifier names (Vite's resolution: as written, then + .ts, then /index.ts). */
function resolveImport(from: string, spec: string): string | null {
  const base = resolve(dirname(from), spec);
  for (const p of [base, `${base}.ts`, join(base, 'index.ts')])
    if (existsSync(p) && statSync(p).isFile() && /\.(ts|svelte)$/.test(p)) return p;
  return null; // JSON, CSS, assets: not modules with imports of their own
}

/** Relative imports of one file, comments left out. */
function importsOf(file: string, text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const specs = [
    ...code.matchAll(/\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g),
    ...code.matchAll(/\bimport\s*['"]([^'"]+)['"]/g),
    ...code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]);
  return [...new Set(specs.filter((s) => s.startsWith('.')))]
    .map((s) => resolveImport(file, s))
    .filter((p): p is string => p !== null);
}

/** One cycle per strongly tangled spot (the first back edge found from each start), as file paths. */
function findCycles(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      const s = state.get(m);
      if (s === 'open') cycles.push([...stack.slice(stack.indexOf(m)), m]);
      else if (s === undefined) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return cycles;
}

describe('import cycles', () => {
  it('finds a cycle when there is one (the checker works)', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
    ]);
    expect(findCycles(g)).toEqual([['a', 'b', 'c', 'a']]);
    expect(
      findCycles(
        new Map([
          ['a', ['b']],
          ['b', []],
        ]),
      ),
    ).toEqual([]);
    // Type imports, re-exports and import() types count; commented-out imports do not.
    const text = [
      "import type { Engine } from './types';",
      "// import { reviveError } from './errors';",
      "export * from './jobs';",
      "type C = import('../model/config').GPTConfig;",
    ].join('\n');
    expect(importsOf(join(SRC, 'lib/engine/x.ts'), text)).toEqual(
      ['lib/engine/types.ts', 'lib/engine/jobs.ts', 'lib/model/config.ts'].map((f) => join(SRC, f)),
    );
  });

  it('src/ has none', () => {
    const files = sourceFiles(SRC);
    expect(files.length).toBeGreaterThan(50);
    const graph = new Map(files.map((f) => [f, importsOf(f, readFileSync(f, 'utf8'))]));
    // The walk sees real edges: the engine imports its errors, the worker the engine.
    expect(graph.get(join(SRC, 'lib/engine/engine.ts'))).toContain(join(SRC, 'lib/engine/errors.ts'));
    expect(graph.get(join(SRC, 'workers/engine.worker.ts'))).toContain(join(SRC, 'lib/engine/engine.ts'));
    const cycles = findCycles(graph).map((c) => c.map((f) => relative(SRC, f)).join(' → '));
    expect(cycles).toEqual([]);
  });
});
