/**
 * SD-1.5-shaped building blocks for the engine benchmark, written on the engine's op library with
 * seeded random weights: a ResnetBlock2D (group norm, SiLU, 3×3 convs, time-embedding add, residual)
 * and a Transformer2DModel with one BasicTransformerBlock (self-attention, cross-attention on a
 * 77×768 context, GEGLU feed-forward, layer norms, linear proj_in/proj_out).
 */
import { Graph, type Value } from '../src/sidecar/engine/graph';
import * as op from '../src/sidecar/engine/ops';

export interface BlockStackSize {
  readonly name: string;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly groups: number;
  readonly heads: number;
}

/** The three levels of the quarter-width SD-1.5 UNet at a 32×32 latent. */
export const BLOCK_STACK_SIZES: readonly BlockStackSize[] = [
  { name: 'c80-32x32', channels: 80, height: 32, width: 32, groups: 16, heads: 8 },
  { name: 'c160-16x16', channels: 160, height: 16, width: 16, groups: 16, heads: 8 },
  { name: 'c320-8x8', channels: 320, height: 8, width: 8, groups: 16, heads: 8 },
];

const CONTEXT = { tokens: 77, dim: 768 };
const TIME_DIM = 320;

export interface BlockStack {
  readonly graph: Graph;
  readonly sample: Value;
  readonly context: Value;
  readonly temb: Value;
  readonly output: Value;
  /** Module paths of the blocks (the natural recompute segments). */
  readonly blocks: readonly string[];
}

function seededUniform(seed: number): (n: number, scale: number) => Float32Array {
  let s = seed >>> 0 || 1;
  return (n, scale) =>
    Float32Array.from({ length: n }, () => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return ((s >>> 0) / 4294967296 - 0.5) * 2 * scale;
    });
}

/** `depth` pairs of (resnet, transformer) blocks, as in one level of the UNet's down path. */
export function buildBlockStack(size: BlockStackSize, depth = 2, seed = 1): BlockStack {
  const g = new Graph(`bench-${size.name}`);
  const random = seededUniform(seed);
  const weight = (name: string, shape: number[]) => {
    const fanIn = shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : shape[0]!;
    return g.weight(`${g.currentScope}.${name}`, 'float32', shape, { kind: 'data', data: random(shape.reduce((a, b) => a * b, 1), 1 / Math.sqrt(fanIn)) });
  };
  const ones = (name: string, n: number) => g.weight(`${g.currentScope}.${name}`, 'float32', [n], { kind: 'data', data: new Float32Array(n).fill(1) });
  const c = size.channels;
  const sample = g.input('sample', 'float32', [1, c, size.height, size.width]);
  const context = g.input('context', 'float32', [1, CONTEXT.tokens, CONTEXT.dim]);
  const temb = g.input('temb', 'float32', [1, TIME_DIM]);

  const resnet = (x: Value) =>
    g.scope('resnet', () => {
      let h = op.silu(op.groupNorm(x, size.groups, ones('norm1.weight', c), weight('norm1.bias', [c]), 1e-5));
      h = op.conv2d(h, weight('conv1.weight', [c, c, 3, 3]), weight('conv1.bias', [c]), { padding: 1 });
      const t = op.linear(op.silu(temb), weight('time_emb_proj.weight', [c, TIME_DIM]), weight('time_emb_proj.bias', [c]));
      h = op.add(h, op.reshape(t, [1, c, 1, 1]));
      h = op.silu(op.groupNorm(h, size.groups, ones('norm2.weight', c), weight('norm2.bias', [c]), 1e-5));
      h = op.conv2d(h, weight('conv2.weight', [c, c, 3, 3]), weight('conv2.bias', [c]), { padding: 1 });
      return op.add(x, h);
    });

  const attention = (name: string, x: Value, ctx: Value) =>
    g.scope(name, () => {
      const heads = size.heads;
      const d = c / heads;
      const split = (v: Value) => op.transpose(op.reshape(v, [1, v.shape[1]!, heads, d]), [0, 2, 1, 3]);
      const q = split(op.linear(x, weight('to_q.weight', [c, c])));
      const k = split(op.linear(ctx, weight('to_k.weight', [c, ctx.shape[2]!])));
      const v = split(op.linear(ctx, weight('to_v.weight', [c, ctx.shape[2]!])));
      const scores = op.matmul(op.mul(q, 1 / Math.sqrt(d)), op.transpose(k, [0, 1, 3, 2]));
      const mixed = op.matmul(op.softmax(scores), v);
      const merged = op.reshape(op.transpose(mixed, [0, 2, 1, 3]), [1, x.shape[1]!, c]);
      return op.linear(merged, weight('to_out.0.weight', [c, c]), weight('to_out.0.bias', [c]));
    });

  const transformer = (x: Value) =>
    g.scope('attentions', () => {
      const tokens = size.height * size.width;
      const normed = op.groupNorm(x, size.groups, ones('norm.weight', c), weight('norm.bias', [c]), 1e-6);
      let h = op.reshape(op.transpose(normed, [0, 2, 3, 1]), [1, tokens, c]);
      h = op.linear(h, weight('proj_in.weight', [c, c]), weight('proj_in.bias', [c]));
      h = g.scope('transformer_blocks.0', () => {
        const ln = (i: number, v: Value) => op.layerNorm(v, ones(`norm${i}.weight`, c), weight(`norm${i}.bias`, [c]), 1e-5);
        const n1 = ln(1, h);
        let b = op.add(h, attention('attn1', n1, n1));
        b = op.add(b, attention('attn2', ln(2, b), context));
        const ff = g.scope('ff', () => {
          const proj = op.linear(ln(3, b), weight('net.0.proj.weight', [8 * c, c]), weight('net.0.proj.bias', [8 * c]));
          const [value, gate] = op.split(proj, [4 * c, 4 * c], -1);
          return op.linear(op.mul(value!, op.gelu(gate!)), weight('net.2.weight', [c, 4 * c]), weight('net.2.bias', [c]));
        });
        return op.add(b, ff);
      });
      h = op.linear(h, weight('proj_out.weight', [c, c]), weight('proj_out.bias', [c]));
      return op.add(op.transpose(op.reshape(h, [1, size.height, size.width, c]), [0, 3, 1, 2]), x);
    });

  let output = sample;
  const blocks: string[] = [];
  for (let i = 0; i < depth; i++) {
    output = g.scope('blocks', () => g.scope(i, () => transformer(resnet(output))));
    blocks.push(`blocks.${i}.resnet`, `blocks.${i}.attentions`);
  }
  return { graph: g, sample, context, temb, output, blocks };
}
