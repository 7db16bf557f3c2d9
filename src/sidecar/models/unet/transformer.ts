/**
 * Transformer2DModel (continuous input) and its BasicTransformerBlocks: self-attention, cross-attention
 * on the text embedding, and a GEGLU feed-forward, each pre-normalised with LayerNorm and residual.
 */
import type { Value } from '../../engine/graph';
import { add, conv2d, gelu, groupNorm, layerNorm, linear, mul, reshape, split, transpose } from '../../engine/ops';
import { attention, type TokenRows } from './attention';
import type { UNetBuildContext } from './context';
import type { TransformerPlan } from './plan';

/** diffusers builds the transformer's GroupNorm with this epsilon, whatever the config's norm_eps. */
const TRANSFORMER_NORM_EPS = 1e-6;
/** LayerNorms inside BasicTransformerBlock. */
const BLOCK_NORM_EPS = 1e-5;
/** GEGLU hidden width = FF_MULT × channels. */
const FF_MULT = 4;

function norm(ctx: UNetBuildContext, name: string, x: Value): Value {
  const c = x.shape[x.rank - 1]!;
  return ctx.graph.scope(name, () => layerNorm(x, ctx.w('weight', [c]), ctx.w('bias', [c]), BLOCK_NORM_EPS, -1));
}

/** GEGLU feed-forward under `ff`: net.0.proj (to 2×hidden), hidden · gelu(gate), net.2. */
function feedForward(ctx: UNetBuildContext, x: Value): Value {
  const { graph, w } = ctx;
  const channels = x.shape[x.rank - 1]!;
  const hidden = FF_MULT * channels;
  return graph.scope('ff', () =>
    graph.scope('net', () => {
      const projected = graph.scope(0, () =>
        graph.scope('proj', () => linear(x, w('weight', [2 * hidden, channels]), w('bias', [2 * hidden]))),
      );
      const [value, gate] = split(projected, [hidden, hidden], -1) as [Value, Value];
      const gated = mul(value, gelu(gate));
      return graph.scope(2, () => linear(gated, w('weight', [channels, hidden]), w('bias', [channels])));
    }),
  );
}

/** One BasicTransformerBlock under the current module path, on token rows [B·N, C]. */
function basicTransformerBlock(ctx: UNetBuildContext, x: TokenRows, t: TransformerPlan): Value {
  const { graph } = ctx;
  const index = ctx.counter.next++;
  const mutual = ctx.mutualFromBlock !== null && index >= ctx.mutualFromBlock;
  const heads = { heads: t.heads, headDim: t.headDim, chunkBytes: ctx.attentionChunkBytes };
  const rows = (value: Value): TokenRows => ({ ...x, value });
  const n1 = rows(norm(ctx, 'norm1', x.value));
  let h = add(graph.scope('attn1', () => attention(ctx, n1, { ...heads, context: null, mutual })), x.value);
  const n2 = rows(norm(ctx, 'norm2', h));
  h = add(graph.scope('attn2', () => attention(ctx, n2, { ...heads, context: ctx.encoderHiddenStates, mutual: false })), h);
  return add(feedForward(ctx, norm(ctx, 'norm3', h)), h);
}

/** Transformer2DModel under the current module path; x: [B, C, H, W] → [B, C, H, W]. */
export function transformer2d(ctx: UNetBuildContext, x: Value, t: TransformerPlan): Value {
  const { graph, w } = ctx;
  const [batch, channels, height, width] = x.shape as [number, number, number, number];
  const tokens = height * width;
  const inner = t.heads * t.headDim;
  if (channels !== t.channels) throw new Error(`${graph.currentScope}: expected ${t.channels} channels, got ${channels}`);
  const normed = graph.scope('norm', () =>
    groupNorm(x, ctx.groups, w('weight', [channels]), w('bias', [channels]), TRANSFORMER_NORM_EPS),
  );

  // Token rows [B·H·W, C]. With 1×1-conv projections the conv runs in NCHW and the layout changes after it.
  const toRows = (v: Value): Value => reshape(transpose(v, [0, 2, 3, 1]), [batch * tokens, v.shape[1]!]);
  const toImage = (v: Value): Value => transpose(reshape(v, [batch, height, width, v.shape[1]!]), [0, 3, 1, 2]);

  let h = t.useLinearProjection
    ? graph.scope('proj_in', () => linear(toRows(normed), w('weight', [inner, channels]), w('bias', [inner])))
    : toRows(graph.scope('proj_in', () => conv2d(normed, w('weight', [inner, channels, 1, 1]), w('bias', [inner]))));

  graph.scope('transformer_blocks', () => {
    for (let d = 0; d < t.depth; d++) h = graph.scope(d, () => basicTransformerBlock(ctx, { value: h, batch, tokens }, t));
  });

  const out = t.useLinearProjection
    ? toImage(graph.scope('proj_out', () => linear(h, w('weight', [channels, inner]), w('bias', [channels]))))
    : graph.scope('proj_out', () => conv2d(toImage(h), w('weight', [channels, inner, 1, 1]), w('bias', [channels])));
  return add(out, x);
}
