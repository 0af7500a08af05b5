/**
 * Loading our AssemblyScript kernels (attention, gemm, Adam, LayerNorm): each ships as base64 in a
 * generated `*-wasm.ts` module (scripts/build-kernels.ts), decoded and instantiated here.
 */

/** The bytes of a base64 string. */
export function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * Compile and instantiate a kernel synchronously; null where it cannot (e.g. no wasm SIMD), so
 * the caller keeps the TF.js ops.
 */
export function instantiateSync<T>(base64: string): T | null {
  try {
    const mod = new WebAssembly.Module(decodeBase64(base64) as BufferSource);
    return new WebAssembly.Instance(mod, {}).exports as unknown as T;
  } catch {
    return null;
  }
}
