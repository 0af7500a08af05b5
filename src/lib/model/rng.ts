/**
 * Seeded pseudo-random numbers, so that weight init, batch order and sampling
 * give the same results on every backend and every run.
 *
 * Generator: sfc32 (Chris Doty-Humphrey's Small Fast Chaotic PRNG, from PractRand),
 * seeded through splitmix32. 128 bits of state, passes PractRand/BigCrush, and the
 * state is four uint32 numbers that a checkpoint can store as JSON.
 *
 * Also here, so every trainer draws the same way: the one seeded permutation (`shuffleInPlace`,
 * `permutation`: Fisher–Yates, Knuth TAOCP vol. 2 §3.4.2, drawing `rng.int(i + 1)` for i from n−1
 * down to 1) and `deriveSeed`, which makes per-run seeds from a base seed and counters.
 */

/** Serialisable generator state (four uint32). */
export type RngState = [number, number, number, number];

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  /** Second normal of the last Box–Muller pair, or null. */
  private spareNormal: number | null = null;

  constructor(seed = 0) {
    const sm = splitmix32(seed);
    this.a = sm();
    this.b = sm();
    this.c = sm();
    this.d = sm();
    // Warm up so that close seeds give unrelated streams.
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** Uniform uint32. */
  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!(n > 0)) throw new RangeError(`Rng.int needs n > 0, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box–Muller, pairs cached). */
  normal(): number {
    if (this.spareNormal !== null) {
      const s = this.spareNormal;
      this.spareNormal = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next(); // avoid log(0)
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Fill a new Float32Array with N(0, std²) numbers. */
  normalArray(n: number, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal() * std;
    return out;
  }

  getState(): RngState {
    // Drop the cached normal so the state alone describes the stream.
    this.spareNormal = null;
    return [this.a, this.b, this.c, this.d];
  }

  setState(state: RngState): void {
    [this.a, this.b, this.c, this.d] = state.map((x) => x >>> 0) as RngState;
    this.spareNormal = null;
  }

  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }
}

/**
 * Shuffle `a` in place (Fisher–Yates from the end, `j = rng.int(i + 1)`) and return it. The one
 * shuffle of the code base: PPO's prompt and minibatch order, the reward model's, SFT's and DPO's
 * batch order and the prompt split all draw this stream.
 */
export function shuffleInPlace<T>(a: T[], rng: Rng): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** A seeded permutation of 0..n−1 (`shuffleInPlace` of `[0, 1, …, n−1]`). */
export function permutation(n: number, rng: Rng): number[] {
  return shuffleInPlace(
    Array.from({ length: n }, (_, i) => i),
    rng,
  );
}

/**
 * A seed (uint32) derived from a base seed and counters, e.g. `deriveSeed(seed, runsSoFar, batch)`:
 * the same parts give the same seed, different parts unrelated ones (splitmix32 over the parts).
 * Parts are whole numbers; their low 32 bits and the bits above are both mixed in.
 */
export function deriveSeed(...parts: number[]): number {
  let h = 0x6a09e667;
  for (const p of parts) {
    if (!Number.isSafeInteger(p)) throw new RangeError(`deriveSeed takes whole numbers, got ${p}`);
    const hi = Math.floor(p / 4294967296) >>> 0;
    h = splitmix32((h ^ (p >>> 0)) >>> 0)();
    h = splitmix32((h ^ hi) >>> 0)();
  }
  return h;
}
