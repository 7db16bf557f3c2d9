/**
 * Computes the outputs of the UNet golden cases (unet_forward, unet_forward_b2_t1, unet_vjp, unet_lora,
 * unet_masa) with our graphs, named as in the golden files. Shared by the unit tests and the
 * conformance handlers, which compare the results against the golden tensors.
 */
import { vjp } from '../../src/sidecar/engine/autodiff';
import type { Value } from '../../src/sidecar/engine/graph';
import { add, mul, reduceSum } from '../../src/sidecar/engine/ops';
import { featureNames } from '../../src/sidecar/models/unet/plan';
import { buildUNetGraph, type UNetForwardOptions, type UNetGraphSpec, type UNetModel } from '../../src/sidecar/models/unet/unet';
import { runGraph } from './run-graph';

export const UNET_CASES = ['unet_forward', 'unet_forward_b2_t1', 'unet_vjp', 'unet_lora', 'unet_masa'] as const;
export type UNetCaseName = (typeof UNET_CASES)[number];

export type CaseOutputs = Record<string, Float32Array>;

/** The golden tensors and settings of one case, from whichever reader the caller uses. */
export interface CaseTensors {
  readonly settings: Readonly<Record<string, unknown>>;
  float32(name: string): Promise<Float32Array>;
  int64(name: string): Promise<BigInt64Array>;
  shape(name: string): readonly number[];
}

const sumAll = (v: Value): Value => reduceSum(v, v.shape.map((_, i) => i), false);

async function commonFeeds(golden: CaseTensors): Promise<Record<string, Float32Array>> {
  return {
    sample: await golden.float32('sample'),
    // The golden timesteps are int64; the graph takes float32 so one graph serves every step.
    timestep: Float32Array.from(await golden.int64('timestep'), Number),
    encoder_hidden_states: await golden.float32('encoder_hidden_states'),
  };
}

/** Build options every case graph gets on top of its own (e.g. a forced attention chunk size). */
type Extra = Pick<UNetForwardOptions, 'attentionChunkBytes'>;

function graphSpec(golden: CaseTensors, extra: Extra): Pick<UNetGraphSpec, 'batch' | 'height' | 'width' | 'tokens' | 'timestep' | 'attentionChunkBytes'> {
  const [batch, , height, width] = golden.shape('sample') as [number, number, number, number];
  const tokens = golden.shape('encoder_hidden_states')[1]!;
  return { batch, height, width, tokens, timestep: 'batch', ...extra };
}

async function forwardCase(unet: UNetModel, golden: CaseTensors, extra: Extra): Promise<CaseOutputs> {
  const outputs = ['eps', ...featureNames(unet.plan)];
  const { graph } = buildUNetGraph(unet, { ...graphSpec(golden, extra), outputs });
  return (await runGraph(graph, await commonFeeds(golden))) as CaseOutputs;
}

async function vjpCase(unet: UNetModel, golden: CaseTensors, extra: Extra): Promise<CaseOutputs> {
  const { graph, inputs, forward } = buildUNetGraph(unet, { ...graphSpec(golden, extra), outputs: ['eps', 'feat_3_up2'] });
  const feature = forward.features.feat_3_up2!;
  const rEps = graph.input('R_eps', 'float32', forward.eps.shape);
  const rFeat = graph.input('R_feat', 'float32', feature.shape);
  graph.output('loss', add(sumAll(mul(forward.eps, rEps)), sumAll(mul(feature, rFeat))));
  const [dSample, dContext] = vjp(
    graph,
    [{ value: forward.eps, cotangent: rEps }, { value: feature, cotangent: rFeat }],
    [inputs.sample, inputs.encoderHiddenStates],
  );
  graph.output('grad_sample', dSample!);
  graph.output('grad_encoder_hidden_states', dContext!);
  const feeds = { ...(await commonFeeds(golden)), R_eps: await golden.float32('R_eps'), R_feat: await golden.float32('R_feat') };
  return (await runGraph(graph, feeds)) as CaseOutputs;
}

async function loraCase(unet: UNetModel, golden: CaseTensors, extra: Extra): Promise<CaseOutputs> {
  const settings = golden.settings as { rank: number; scale: number };
  const { graph, forward } = buildUNetGraph(unet, { ...graphSpec(golden, extra), outputs: ['eps'], lora: { rank: settings.rank, scale: settings.scale } });
  const rEps = graph.input('R_eps', 'float32', forward.eps.shape);
  graph.output('loss', sumAll(mul(forward.eps, rEps)));
  const adapterInputs = forward.lora.flatMap((a) => [a.down, a.up]);
  const grads = vjp(graph, [{ value: forward.eps, cotangent: rEps }], adapterInputs);
  adapterInputs.forEach((input, i) => graph.output(`grad.${input.name}`, grads[i]!));
  const feeds: Record<string, Float32Array> = { ...(await commonFeeds(golden)), R_eps: await golden.float32('R_eps') };
  for (const input of adapterInputs) feeds[input.name] = await golden.float32(input.name);
  return (await runGraph(graph, feeds)) as CaseOutputs;
}

async function masaCase(unet: UNetModel, golden: CaseTensors, extra: Extra): Promise<CaseOutputs> {
  const { start_layer: startLayer } = golden.settings as { start_layer: number };
  const spec = graphSpec(golden, extra);
  const feeds = await commonFeeds(golden);
  const mutual = buildUNetGraph(unet, { ...spec, mutualSelfAttention: { startLayer } });
  const plain = buildUNetGraph(unet, spec);
  return {
    eps: (await runGraph(mutual.graph, feeds)).eps as Float32Array,
    eps_no_masa: (await runGraph(plain.graph, feeds)).eps as Float32Array,
  };
}

const RUNNERS: Record<UNetCaseName, (unet: UNetModel, golden: CaseTensors, extra: Extra) => Promise<CaseOutputs>> = {
  unet_forward: forwardCase,
  unet_forward_b2_t1: forwardCase,
  unet_vjp: vjpCase,
  unet_lora: loraCase,
  unet_masa: masaCase,
};

/** Every output of the case with a tolerance in the golden index, computed by our graphs. */
export async function computeUNetCase(name: UNetCaseName, unet: UNetModel, golden: CaseTensors, extra: Extra = {}): Promise<CaseOutputs> {
  return RUNNERS[name](unet, golden, extra);
}
