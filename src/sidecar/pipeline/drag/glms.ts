/**
 * GLMS gradient fusion of the local (drag) gradient G_l and the global (CLIP) gradient G_g, with
 * c = cos(G_g, G_l) over all latent elements. Two rules:
 *
 * - `official` (default), the reference code's: with s = √(1 − c²)
 *     G = G_l + λ·s·G_g  if c ≥ 0  (consistent)
 *     G = G_l + λ·c·G_g  otherwise (contradicting)
 *   i.e. G_g itself, scaled by the two components' magnitudes;
 * - `projection`: an interpretation, not the paper's typeset equation (which was not available to check
 *   against): the paper's text speaks of splitting the global gradient into its parts perpendicular and
 *   parallel to the local one. With u = G_l/‖G_l‖, G_g∥ = (G_g·u)·u and G_g⊥ = G_g − G_g∥:
 *   G = G_l + λ·G_g⊥ when consistent (c ≥ 0), G_l + λ·G_g∥ when contradicting.
 *
 * Both are checked by the `glms_rules` conformance case on gradients that agree and that conflict.
 */
import type { FusionRule } from '../../../shared/edit-parameters';

const f32 = Math.fround;

/** torch.cosine_similarity's floor on the norm product. */
const COSINE_EPS = 1e-8;

/** Cosine similarity of two flattened tensors (accumulated in float64, returned as float32). */
export function cosineSimilarity(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new RangeError(`cosine similarity of ${a.length} and ${b.length} values`);
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return f32(dot / Math.max(Math.sqrt(aa) * Math.sqrt(bb), COSINE_EPS));
}

export interface FusedGradient {
  readonly gradient: Float32Array;
  /** cos(G_g, G_l). */
  readonly cosine: number;
}

/** The official code's rule: fuses G_l and G_g with coefficient λ (`fuse_cof`). */
export function fuseGradients(gLocal: Float32Array, gGlobal: Float32Array, fuseCoefficient: number): FusedGradient {
  const cosine = cosineSimilarity(gGlobal, gLocal);
  const weight = cosine >= 0 ? f32(fuseCoefficient * f32(Math.sqrt(f32(1 - f32(cosine * cosine))))) : f32(fuseCoefficient * cosine);
  const gradient = new Float32Array(gLocal.length);
  for (let i = 0; i < gLocal.length; i++) gradient[i] = f32(gLocal[i]! + f32(weight * gGlobal[i]!));
  return { gradient, cosine };
}

/** The projection variant (an interpretation of the paper's prose; see the module comment). */
export function fuseByProjection(gLocal: Float32Array, gGlobal: Float32Array, weight: number): FusedGradient {
  const cosine = cosineSimilarity(gGlobal, gLocal);
  let dot = 0;
  let norm2 = 0;
  for (let i = 0; i < gLocal.length; i++) {
    dot += gGlobal[i]! * gLocal[i]!;
    norm2 += gLocal[i]! * gLocal[i]!;
  }
  // G_g∥ = (G_g·G_l / ‖G_l‖²)·G_l; a zero G_l has no direction, so all of G_g is perpendicular.
  const along = norm2 > 0 ? dot / norm2 : 0;
  const gradient = new Float32Array(gLocal.length);
  for (let i = 0; i < gLocal.length; i++) {
    const parallel = along * gLocal[i]!;
    const part = cosine >= 0 ? gGlobal[i]! - parallel : parallel;
    gradient[i] = f32(gLocal[i]! + weight * part);
  }
  return { gradient, cosine };
}

export function fuse(rule: FusionRule, gLocal: Float32Array, gGlobal: Float32Array, weight: number): FusedGradient {
  return rule === 'projection' ? fuseByProjection(gLocal, gGlobal, weight) : fuseGradients(gLocal, gGlobal, weight);
}
