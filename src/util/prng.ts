/**
 * mulberry32: a tiny seeded pseudo-random generator (Tommy Ettinger's, public domain), uniform in
 * [0, 1). Deterministic for a seed, so a demo, a benchmark or a failing random test can be run
 * again exactly. Not for anything that needs unpredictability.
 *
 * @param seed any number; only its low 32 bits count
 * @returns a function giving the next number in [0, 1)
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
