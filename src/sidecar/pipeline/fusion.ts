/**
 * GLMS gradient fusion of the local (drag) gradient G_l and the global (CLIP) gradient G_g:
 *
 * - `official` (default): the reference code's rule (`drag/glms.ts`): G = G_l + λ·√(1−c²)·G_g when
 *   c = cos(G_g, G_l) ≥ 0, else G_l + λ·c·G_g — G_g itself scaled by the two components' magnitudes;
 * - `projection`: the decomposition the paper describes: with u = G_l/‖G_l‖, G_g∥ = (G_g·u)·u and
 *   G_g⊥ = G_g − G_g∥, G = G_l + λ·G_g⊥ when consistent (c ≥ 0), G_l + λ·G_g∥ when contradicting.
 */
import type { FusionRule } from '../../shared/edit-parameters';
import { cosineSimilarity, fuseGradients, type FusedGradient } from './drag/glms';

const f32 = Math.fround;

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
