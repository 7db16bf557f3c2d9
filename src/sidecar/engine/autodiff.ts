/**
 * Reverse-mode differentiation of engine graphs.
 *
 * `vjp` appends the backward pass to the forward graph (so one ONNX run yields outputs and gradients)
 * using each op's rule, written with the same op functions as model code: the result is standard
 * ONNX ops only. Only nodes on a gradient path from a `wrt` value to a seed get rules applied; paths
 * through an op's gradient-free inputs (indices, conditions, stopGradient) do not count. Calling it
 * several times on one graph builds several independent backward passes over the same forward.
 *
 * Rematerialisation: nodes put into segments by `recompute` are not kept for the backward pass;
 * when the backward reaches a segment, the segment is recomputed from its kept boundary values. To
 * keep onnxruntime from scheduling that recomputation early (or merging it back into the forward by
 * common-subexpression elimination), every boundary value is re-entered as `v + 0·g₀`, where g₀ is
 * one element of the cotangent that arrives at the segment: a data dependency on the backward
 * pass that no optimiser folds away.
 *
 * Weights stored in a narrower dtype than the model computes in (a float16 checkpoint in a float32 graph)
 * enter through a Cast per weight. A backward rule that reads such a weight reads a Cast of its own, which the
 * serializer schedules where the backward reaches the layer (onnx/serialize.ts): the full-width copy of each
 * weight lives only while its layer runs, forward or backward, never from one to the other.
 */
import { isFloat } from './dtype';
import { GraphBuildError, isWeightCast, type Graph, type Node, type Value } from './graph';
import { getOp } from './op';
import { add, cast, mul, reshape, slice } from './ops';
import { formatShape, sameShape } from './shape';

export interface Seed {
  /** A value of the forward graph (often a scalar loss). */
  readonly value: Value;
  /** The cotangent pulled back from it: same dtype and shape as `value`. */
  readonly cotangent: Value;
}

/**
 * Which forward nodes to recompute in the backward pass instead of keeping their outputs: a function
 * that names the node's segment (or returns null to keep it), or a list of module-path prefixes, each
 * its own segment. A segment is recomputed as a whole from the values entering it, so make segments
 * blocks of the network (a resnet or transformer block), not one region spanning many blocks.
 */
export type RecomputePolicy = ((node: Node) => string | null) | { readonly scopes: readonly string[] };

export interface VjpOptions {
  readonly recompute?: RecomputePolicy;
  /** Module path under which backward nodes are filed, before the forward node's own path. Default `grad`. */
  readonly scope?: string;
}

/** Raised when a gradient would have to pass through an op that has none. */
export class NotDifferentiableError extends GraphBuildError {
  constructor(message: string) {
    super(message);
    this.name = 'NotDifferentiableError';
  }
}

/**
 * Appends to `graph` the vector-Jacobian product of the seeds with respect to each `wrt` value and
 * returns one gradient per `wrt` (same dtype and shape), or null where no seed depends on it.
 * `wrt` may hold graph inputs, weights or intermediate values.
 */
export function vjp(graph: Graph, seeds: readonly Seed[], wrt: readonly Value[], options: VjpOptions = {}): (Value | null)[] {
  checkArguments(graph, seeds, wrt);
  const forward = graph.nodes.slice();
  const noGrad = (node: Node, i: number) => getOp(node.op).noGradInputs?.includes(i) ?? false;

  // Values that depend on some wrt value, and values some seed depends on, both along gradient edges.
  const depends = new Set(wrt.map((v) => v.id));
  for (const node of forward) {
    if (node.inputs.some((v, i) => !noGrad(node, i) && depends.has(v.id))) for (const out of node.outputs) depends.add(out.id);
  }
  const reaches = new Set(seeds.map((s) => s.value.id));
  for (let k = forward.length - 1; k >= 0; k--) {
    const node = forward[k]!;
    if (node.outputs.some((v) => reaches.has(v.id))) node.inputs.forEach((v, i) => !noGrad(node, i) && reaches.add(v.id));
  }
  const onPath = (v: Value) => depends.has(v.id) && reaches.has(v.id);
  const active = forward.filter((node) => node.outputs.some(onPath));
  active.forEach((node) => checkDifferentiable(node, onPath));

  const prefix = options.scope ?? 'grad';
  const scopeOf = (node: Node) => (node.scope ? `${prefix}.${node.scope}` : prefix);
  const remat = new Rematerializer(graph, segmentOf(options.recompute));
  const cotangents = new Cotangents();
  for (const seed of seeds) if (onPath(seed.value)) cotangents.add(seed.value, seed.cotangent);

  for (let k = active.length - 1; k >= 0; k--) {
    const node = active[k]!;
    const gradsOut = node.outputs.map((v) => cotangents.total(v));
    const anchor = gradsOut.find((g): g is Value => g !== null);
    if (!anchor) continue;
    const needs = node.inputs.map((v, i) => !noGrad(node, i) && depends.has(v.id));
    const rule = getOp(node.op).vjp!;
    const grads = graph.atScope(scopeOf(node), () => {
      const seen = remat.segment(node) !== null ? remat.recomputed(node, anchor) : remat.withWeightsRecast(node);
      return rule(seen, gradsOut, needs);
    });
    node.inputs.forEach((input, i) => {
      const grad = grads[i];
      if (!needs[i] || !grad) return;
      if (grad.dtype !== input.dtype || !sameShape(grad.shape, input.shape)) {
        throw new GraphBuildError(
          `the ${node.op} gradient rule returned ${grad.dtype}${formatShape(grad.shape)} for input ${i} of ${node.name}, ` +
            `which is ${input.dtype}${formatShape(input.shape)}`,
        );
      }
      cotangents.add(input, grad);
    });
  }
  return graph.atScope(prefix, () => wrt.map((v) => cotangents.total(v)));
}

/** Gradient of a one-element value (a loss) with respect to `wrt`: `vjp` with the seed 1. */
export function grad(loss: Value, wrt: readonly Value[], options: VjpOptions = {}): (Value | null)[] {
  if (loss.size !== 1) throw new GraphBuildError(`grad needs a one-element loss, ${loss.name} is ${formatShape(loss.shape)}; use vjp with a cotangent`);
  const one = loss.graph.constant([1], loss.shape, loss.dtype);
  return vjp(loss.graph, [{ value: loss, cotangent: one }], wrt, options);
}

function checkArguments(graph: Graph, seeds: readonly Seed[], wrt: readonly Value[]): void {
  if (seeds.length === 0) throw new GraphBuildError('vjp needs at least one seed');
  for (const { value, cotangent } of seeds) {
    if (value.graph !== graph || cotangent.graph !== graph) throw new GraphBuildError(`vjp seed ${value.name} belongs to another graph`);
    if (cotangent.dtype !== value.dtype || !sameShape(cotangent.shape, value.shape)) {
      throw new GraphBuildError(
        `vjp seed ${value.name} is ${value.dtype}${formatShape(value.shape)} but its cotangent ${cotangent.name} is ${cotangent.dtype}${formatShape(cotangent.shape)}`,
      );
    }
  }
  for (const v of wrt) {
    if (v.graph !== graph) throw new GraphBuildError(`vjp: ${v.name} belongs to another graph`);
    if (!isFloat(v.dtype)) throw new GraphBuildError(`vjp: ${v.name} is ${v.dtype}; only floating-point values have gradients`);
  }
}

function describe(node: Node): string {
  return `${node.op} node ${node.name} (module ${node.scope || '<root>'})`;
}

function checkDifferentiable(node: Node, onPath: (v: Value) => boolean): void {
  const hint = 'If no gradient is meant to flow there, wrap its operand in stopGradient().';
  if (!getOp(node.op).vjp) {
    throw new NotDifferentiableError(`cannot differentiate through ${describe(node)}: ${node.op} has no gradient rule, and a gradient must pass through it. ${hint}`);
  }
  const discrete = node.outputs.find((v) => onPath(v) && !isFloat(v.dtype));
  if (discrete) {
    throw new NotDifferentiableError(
      `cannot differentiate through ${describe(node)}: its output is ${discrete.dtype}, and integer values carry no gradient, yet a gradient must pass through it. ${hint}`,
    );
  }
}

/** Accumulates the cotangent contributions of each value; `total` sums them once and remembers the sum. */
class Cotangents {
  private readonly parts = new Map<number, Value[]>();
  private readonly totals = new Map<number, Value | null>();

  add(value: Value, cotangent: Value): void {
    if (this.totals.has(value.id)) throw new GraphBuildError(`internal: a gradient reached ${value.name} after it was summed`);
    const list = this.parts.get(value.id) ?? [];
    list.push(cotangent);
    this.parts.set(value.id, list);
  }

  total(value: Value): Value | null {
    if (this.totals.has(value.id)) return this.totals.get(value.id)!;
    const parts = this.parts.get(value.id) ?? [];
    // A balanced sum keeps the chain short when many branches fan out of one value.
    let level = parts;
    while (level.length > 1) {
      const next: Value[] = [];
      for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? add(level[i]!, level[i + 1]!) : level[i]!);
      level = next;
    }
    const sum = level[0] ?? null;
    this.totals.set(value.id, sum);
    return sum;
  }
}

function segmentOf(policy: RecomputePolicy | undefined): (node: Node) => string | null {
  if (!policy) return () => null;
  if (typeof policy === 'function') return policy;
  const scopes = [...policy.scopes].sort((a, b) => b.length - a.length);
  return (node) => scopes.find((s) => node.scope === s || node.scope.startsWith(`${s}.`)) ?? null;
}

/** Rebuilds forward nodes of recompute segments, and weight casts, in the backward pass, each at most once. */
class Rematerializer {
  private readonly clones = new Map<number, Node>();
  private readonly reentered = new Map<number, Value>();
  private readonly recast = new Map<number, Value>();
  private readonly anchors = new Map<number, Value>();

  constructor(
    private readonly graph: Graph,
    readonly segment: (node: Node) => string | null,
  ) {}

  /** The node as the backward pass sees it: inputs and outputs recomputed from the segment's boundary. */
  recomputed(node: Node, anchor: Value): Node {
    const cached = this.clones.get(node.id);
    if (cached) return cached;
    const key = this.segment(node)!;
    const inputs = node.inputs.map((v) => this.valueFor(v, key, anchor));
    const outputs = this.graph.atScope(`recompute.${node.scope}`, () => this.graph.apply(node.op, inputs, node.attrs));
    const clone: Node = { ...node, inputs, outputs };
    this.clones.set(node.id, clone);
    return clone;
  }

  /** The node with every weight cast among its inputs cast again in the backward pass (the node itself is kept). */
  withWeightsRecast(node: Node): Node {
    if (!node.inputs.some(isWeightCast)) return node;
    return { ...node, inputs: node.inputs.map((v) => (isWeightCast(v) ? this.weightRecast(v) : v)) };
  }

  private valueFor(value: Value, key: string, anchor: Value): Value {
    if (isWeightCast(value)) return this.weightRecast(value);
    const producer = value.producer;
    if (producer && this.segment(producer) === key) return this.recomputed(producer, anchor).outputs[producer.outputs.indexOf(value)]!;
    if (value.kind === 'weight' || value.kind === 'constant') return value;
    return this.reenter(value, anchor);
  }

  /** `value + 0·g₀`: the same numbers, but computable only once the backward pass has produced `anchor`. */
  private reenter(value: Value, anchor: Value): Value {
    const known = this.reentered.get(value.id);
    if (known) return known;
    let zero = this.anchors.get(anchor.id);
    if (!zero) {
      const first = slice(reshape(anchor, [anchor.size]), [0], [1]);
      zero = reshape(mul(first, 0), []);
      this.anchors.set(anchor.id, zero);
    }
    const tied = isFloat(value.dtype) ? add(value, cast(zero, value.dtype)) : value;
    this.reentered.set(value.id, tied);
    return tied;
  }

  /**
   * The weight cast again for the backward pass, a Cast node of its own: the serializer writes each weight cast
   * where its first reader runs and makes it wait for that reader's other input (onnx/serialize.ts), so this one is
   * made when the backward pass reaches the layer, and the forward's is gone by then.
   */
  private weightRecast(value: Value): Value {
    const known = this.recast.get(value.id);
    if (known) return known;
    const producer = value.producer!;
    const recast = this.graph.atScope(`recompute.${producer.scope}`, () => this.graph.apply(producer.op, producer.inputs, producer.attrs)[0]!);
    this.recast.set(value.id, recast);
    return recast;
  }
}
