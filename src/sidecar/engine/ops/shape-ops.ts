/**
 * Ops that move, select or replicate data: Reshape, Expand, Transpose, Slice, Concat, Split, Gather,
 * Pad, Tile, ScatterElements (the adjoint of Gather), and helpers built on them (unsqueeze, squeeze,
 * flatten, zeros).
 */
import type { DType } from '../dtype';
import type { OpNode, Value } from '../graph';
import { defineOp, type OnnxLowering } from '../op';
import type { OpAttrs, OpType } from '../op-attrs';
import { broadcastShapes, formatShape, normalizeAxis, numel, sameShape, type Shape } from '../shape';
import { normalizeAxes, requireSameDtype } from './checks';
import { reduceSum, reduceToShape } from './reduce';

/** Emits `type(input0, <each listed int list as an int64 tensor>...)`: opset 18 takes these as inputs. */
export function lowerWithIntInputs<K extends OpType>(type: K, intLists: (attrs: OpAttrs[K]) => readonly (readonly number[])[]) {
  return (node: OpNode<K>, onnx: OnnxLowering): void => {
    const extra = intLists(node.attrs).map((list) => onnx.constant(list, 'int64'));
    onnx.emit(type, [onnx.inputs[0]!, ...extra], onnx.outputs);
  };
}

defineOp({
  type: 'Reshape',
  infer([x], attrs) {
    const shape = attrs.shape;
    if (numel(shape) !== numel(x!.shape)) throw new Error(`cannot reshape ${formatShape(x!.shape)} to ${formatShape(shape)}`);
    return [{ dtype: x!.dtype, shape }];
  },
  lower: lowerWithIntInputs('Reshape', (a) => [a.shape]),
  vjp: (node, [g]) => [reshape(g!, node.inputs[0]!.shape)],
});

defineOp({
  type: 'Expand',
  infer([x], attrs) {
    const target = attrs.shape;
    const shape = broadcastShapes(x!.shape, target);
    if (!shape || !sameShape(shape, target)) throw new Error(`cannot expand ${formatShape(x!.shape)} to ${formatShape(target)}`);
    return [{ dtype: x!.dtype, shape }];
  },
  lower: lowerWithIntInputs('Expand', (a) => [a.shape]),
  vjp: (node, [g]) => [reduceToShape(g!, node.inputs[0]!.shape)],
});

defineOp({
  type: 'Transpose',
  infer([x], attrs) {
    const perm = attrs.perm;
    if (perm.length !== x!.shape.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
      throw new Error(`perm ${formatShape(perm)} is not a permutation of the ${x!.shape.length} axes`);
    }
    return [{ dtype: x!.dtype, shape: perm.map((p) => x!.shape[p]!) }];
  },
  onnxAttrs: { perm: 'ints' },
  vjp: (node, [g]) => [transpose(g!, inversePermutation(node.attrs.perm))],
});

// starts/ends/axes/steps are normalised by slice(): absolute, in range, one entry per sliced axis.
defineOp({
  type: 'Slice',
  infer([x], attrs) {
    const shape = [...x!.shape];
    const { starts, ends, axes, steps } = attrs;
    axes.forEach((axis, i) => {
      shape[axis] = Math.max(0, Math.ceil((ends[i]! - starts[i]!) / steps[i]!));
    });
    return [{ dtype: x!.dtype, shape }];
  },
  lower: lowerWithIntInputs('Slice', (a) => [a.starts, a.ends, a.axes, a.steps]),
  vjp(node, [g]) {
    const x = node.inputs[0]!;
    const { starts, ends, axes, steps } = node.attrs;
    // Strided axes scatter the cotangent back to the picked positions; unit-step axes pad it.
    let dx = g!;
    const pads = new Array<number>(2 * x.rank).fill(0);
    axes.forEach((axis, i) => {
      const [start, end, step] = [starts[i]!, ends[i]!, steps[i]!];
      if (step === 1) {
        pads[axis] = start;
        pads[axis + x.rank] = x.shape[axis]! - end;
      } else {
        const picked = Array.from({ length: dx.shape[axis]! }, (_, k) => start + k * step);
        dx = scatterAddAlong(dx, picked, axis, x.shape[axis]!);
      }
    });
    return [pad(dx, pads)];
  },
});

defineOp({
  type: 'Concat',
  infer(inputs, attrs) {
    if (inputs.length === 0) throw new Error('Concat needs at least one input');
    const dtype = requireSameDtype('Concat', inputs);
    const first = inputs[0]!.shape;
    const axis = attrs.axis;
    let total = 0;
    for (const t of inputs) {
      if (t.shape.length !== first.length || t.shape.some((d, i) => i !== axis && d !== first[i])) {
        throw new Error(`Concat along axis ${axis} needs equal other dims, got ${inputs.map((v) => formatShape(v.shape)).join(', ')}`);
      }
      total += t.shape[axis]!;
    }
    return [{ dtype, shape: first.map((d, i) => (i === axis ? total : d)) }];
  },
  onnxAttrs: { axis: 'int' },
  vjp(node, [g], needs) {
    const axis = node.attrs.axis;
    const parts = split(g!, node.inputs.map((v) => v.shape[axis]!), axis);
    return parts.map((p, i) => (needs[i] ? p : null));
  },
});

defineOp({
  type: 'Split',
  infer([x], attrs) {
    const { axis, split: sizes } = attrs;
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total !== x!.shape[axis]) throw new Error(`split sizes ${formatShape(sizes)} do not add up to dim ${axis} of ${formatShape(x!.shape)}`);
    return sizes.map((s) => ({ dtype: x!.dtype, shape: x!.shape.map((d, i) => (i === axis ? s : d)) }));
  },
  lower(node, onnx) {
    onnx.emit('Split', [onnx.inputs[0]!, onnx.constant(node.attrs.split, 'int64')], onnx.outputs, [
      { name: 'axis', type: 'int', value: node.attrs.axis },
    ]);
  },
  vjp(node, cotangents) {
    const parts = node.outputs.map((out, i) => cotangents[i] ?? zeros(out.graph, out.shape, out.dtype));
    return [concat(parts, node.attrs.axis)];
  },
});

defineOp({
  type: 'Gather',
  infer([x, indices], attrs) {
    if (indices!.dtype !== 'int64' && indices!.dtype !== 'int32') throw new Error(`Gather needs int32/int64 indices, got ${indices!.dtype}`);
    const axis = attrs.axis;
    const shape = [...x!.shape.slice(0, axis), ...indices!.shape, ...x!.shape.slice(axis + 1)];
    return [{ dtype: x!.dtype, shape }];
  },
  onnxAttrs: { axis: 'int' },
  noGradInputs: [1],
  vjp(node, [g]) {
    const [x, indices] = node.inputs as [Value, Value];
    const axis = node.attrs.axis;
    const flat = reshape(g!, [...x.shape.slice(0, axis), indices.size, ...x.shape.slice(axis + 1)]);
    return [scatterAddAlong(flat, reshape(indices, [indices.size]), axis, x.shape[axis]!), null];
  },
});

defineOp({
  type: 'ScatterElements',
  infer([data, indices, updates], attrs) {
    requireSameDtype('ScatterElements', [data!, updates!]);
    if (!sameShape(indices!.shape, updates!.shape)) throw new Error('ScatterElements needs indices shaped like updates');
    if (data!.shape.length !== updates!.shape.length) throw new Error('ScatterElements needs data and updates of one rank');
    if (attrs.reduction !== 'add' && attrs.reduction !== 'none') throw new Error(`unsupported reduction ${String(attrs.reduction)}`);
    return [data!];
  },
  onnxAttrs: { axis: 'int', reduction: 'string' },
  noGradInputs: [1],
  vjp(node, [g], needs) {
    // Only the accumulate form appears (as Gather's adjoint): d/ddata = g, d/dupdates = g gathered back.
    if (node.attrs.reduction !== 'add') throw new Error('the gradient of ScatterElements without reduction="add" is not implemented');
    const indices = node.inputs[1]!;
    const axis = node.attrs.axis;
    return [needs[0] ? g! : null, null, needs[2] ? g!.graph.apply1('GatherElements', [g!, indices], { axis }) : null];
  },
});

defineOp({
  type: 'GatherElements',
  infer([x, indices]) {
    if (x!.shape.length !== indices!.shape.length) throw new Error('GatherElements needs data and indices of one rank');
    return [{ dtype: x!.dtype, shape: indices!.shape }];
  },
  onnxAttrs: { axis: 'int' },
  noGradInputs: [1],
  vjp(node, [g]) {
    const [x, indices] = node.inputs as [Value, Value];
    const axis = node.attrs.axis;
    const zero = zeros(x.graph, x.shape, x.dtype);
    return [x.graph.apply1('ScatterElements', [zero, indices, g!], { axis, reduction: 'add' }), null];
  },
});

defineOp({
  type: 'Pad',
  infer([x], attrs) {
    const pads = attrs.pads;
    const rank = x!.shape.length;
    if (pads.length !== 2 * rank) throw new Error(`Pad needs ${2 * rank} pads (begins then ends), got ${pads.length}`);
    const shape = x!.shape.map((d, i) => d + pads[i]! + pads[i + rank]!);
    if (shape.some((d) => d < 0)) throw new Error(`pads ${formatShape(pads)} crop ${formatShape(x!.shape)} below zero`);
    return [{ dtype: x!.dtype, shape }];
  },
  lower(node, onnx) {
    const dtype = node.inputs[0]!.dtype;
    const value = onnx.constant([node.attrs.value ?? 0], dtype, []);
    onnx.emit('Pad', [onnx.inputs[0]!, onnx.constant(node.attrs.pads, 'int64'), value], onnx.outputs, [
      { name: 'mode', type: 'string', value: 'constant' },
    ]);
  },
  // Positive pads are cut off again; negative pads (crops) are filled back with zeros.
  vjp(node, [g]) {
    const pads = node.attrs.pads;
    const rank = g!.rank;
    const starts = g!.shape.map((_, i) => Math.max(0, pads[i]!));
    const ends = g!.shape.map((d, i) => d - Math.max(0, pads[i + rank]!));
    const cut = slice(g!, starts, ends);
    return [pad(cut, pads.map((p) => Math.max(0, -p)))];
  },
});

defineOp({
  type: 'Tile',
  infer([x], attrs) {
    const repeats = attrs.repeats;
    if (repeats.length !== x!.shape.length) throw new Error(`Tile needs ${x!.shape.length} repeats, got ${repeats.length}`);
    return [{ dtype: x!.dtype, shape: x!.shape.map((d, i) => d * repeats[i]!) }];
  },
  lower: lowerWithIntInputs('Tile', (a) => [a.repeats]),
  vjp(node, [g]) {
    const x = node.inputs[0]!;
    const repeats = node.attrs.repeats;
    const split = x.shape.flatMap((d, i) => [repeats[i]!, d]);
    const summed = reduceSum(reshape(g!, split), repeats.map((_, i) => 2 * i));
    return [reshape(summed, x.shape)];
  },
});

/** Reshape to a static shape; one entry may be -1 (inferred). */
export function reshape(x: Value, shape: Shape): Value {
  const known = shape.filter((d) => d !== -1);
  const resolved = known.length === shape.length ? shape : shape.map((d) => (d === -1 ? numel(x.shape) / numel(known) : d));
  if (sameShape(resolved, x.shape)) return x;
  return x.graph.apply1('Reshape', [x], { shape: resolved.map((d) => (Number.isInteger(d) ? d : NaN)) });
}

export function expand(x: Value, shape: Shape): Value {
  if (sameShape(x.shape, shape)) return x;
  return x.graph.apply1('Expand', [x], { shape: [...shape] });
}

/** Permutes axes (default: reverses them). A transpose of a transpose collapses into one (or none). */
export function transpose(x: Value, perm?: readonly number[]): Value {
  let p = perm ? perm.map((a) => normalizeAxis(a, x.rank)) : x.shape.map((_, i) => x.rank - 1 - i);
  let source = x;
  const producer = x.producer;
  if (producer?.op === 'Transpose' && p.length === x.rank) {
    const inner = producer.attrs.perm;
    p = p.map((a) => inner[a]!);
    source = producer.inputs[0]!;
  }
  if (p.every((a, i) => a === i) && p.length === source.rank) return source;
  return source.graph.apply1('Transpose', [source], { perm: p });
}

/**
 * Static slice with ONNX semantics: negative starts/ends count from the end, out-of-range bounds are
 * clamped, `axes` defaults to the first `starts.length` axes and `steps` to 1.
 */
export function slice(
  x: Value,
  starts: readonly number[],
  ends: readonly number[],
  axes?: readonly number[],
  steps?: readonly number[],
): Value {
  const ax = (axes ?? starts.map((_, i) => i)).map((a) => normalizeAxis(a, x.rank));
  if (starts.length !== ax.length || ends.length !== ax.length || (steps && steps.length !== ax.length)) {
    throw new Error(`slice of ${x.name}: starts, ends, axes and steps need one entry per sliced axis`);
  }
  const st = steps ?? ax.map(() => 1);
  const norm = { starts: [] as number[], ends: [] as number[], axes: [] as number[], steps: [] as number[] };
  const reversed: [number, number[]][] = [];
  ax.forEach((axis, i) => {
    const dim = x.shape[axis]!;
    const step = st[i]!;
    if (step === 0) throw new Error(`slice of ${x.name}: step 0 on axis ${axis}`);
    const clampTo = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + dim : v, lo), hi);
    const start = step > 0 ? clampTo(starts[i]!, 0, dim) : clampTo(starts[i]!, 0, dim - 1);
    const end = step > 0 ? clampTo(ends[i]!, 0, dim) : clampTo(ends[i]!, -1, dim - 1);
    if (step < 0) {
      // ONNX's shape inference mis-sizes negative-step slices; a gather of the picked indices is exact.
      const picked: number[] = [];
      for (let k = start; k > end; k += step) picked.push(k);
      reversed.push([axis, picked]);
      return;
    }
    if (step === 1 && start === 0 && end === dim) return;
    norm.starts.push(start);
    norm.ends.push(end);
    norm.axes.push(axis);
    norm.steps.push(step);
  });
  let y = norm.axes.length === 0 ? x : x.graph.apply1('Slice', [x], norm);
  for (const [axis, picked] of reversed) y = gather(y, picked, axis);
  return y;
}

export function concat(values: readonly Value[], axis: number): Value {
  if (values.length === 0) throw new Error('concat needs at least one value');
  if (values.length === 1) return values[0]!;
  return values[0]!.graph.apply1('Concat', values, { axis: normalizeAxis(axis, values[0]!.rank) });
}

/** Splits along `axis` into pieces of the given sizes. */
export function split(x: Value, sizes: readonly number[], axis: number): Value[] {
  const a = normalizeAxis(axis, x.rank);
  if (sizes.length === 1 && sizes[0] === x.shape[a]) return [x];
  return x.graph.apply('Split', [x], { axis: a, split: [...sizes] });
}

/** ONNX Gather: picks entries along `axis`; constant indices may be given as a JS array. */
export function gather(x: Value, indices: readonly number[] | Value, axis: number): Value {
  const a = normalizeAxis(axis, x.rank);
  const idx = Array.isArray(indices) ? x.graph.constant(indices as readonly number[], [indices.length], 'int64') : (indices as Value);
  return x.graph.apply1('Gather', [x, idx], { axis: a });
}

/** ONNX GatherElements (indices shaped like the output). */
export function gatherElements(x: Value, indices: Value, axis: number): Value {
  return x.graph.apply1('GatherElements', [x, indices], { axis: normalizeAxis(axis, x.rank) });
}

/** Constant padding with ONNX's layout: `[begin_0, ..., begin_{r-1}, end_0, ..., end_{r-1}]`; negative pads crop. */
export function pad(x: Value, pads: readonly number[], value = 0): Value {
  if (pads.every((p) => p === 0) && pads.length === 2 * x.rank) return x;
  return x.graph.apply1('Pad', [x], { pads: [...pads], value });
}

export function tile(x: Value, repeats: readonly number[]): Value {
  if (repeats.every((r) => r === 1) && repeats.length === x.rank) return x;
  return x.graph.apply1('Tile', [x], { repeats: [...repeats] });
}

/** Inserts size-1 axes at `axes` (positions in the output). */
export function unsqueeze(x: Value, axes: readonly number[]): Value {
  const rank = x.rank + axes.length;
  const at = normalizeAxes(axes, rank);
  const shape: number[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) shape.push(at.includes(i) ? 1 : x.shape[k++]!);
  return reshape(x, shape);
}

/** Removes size-1 axes (all of them when `axes` is omitted). */
export function squeeze(x: Value, axes?: readonly number[]): Value {
  const at = axes ? normalizeAxes(axes, x.rank) : x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
  for (const a of at) if (x.shape[a] !== 1) throw new Error(`squeeze of ${x.name}: axis ${a} of ${formatShape(x.shape)} is not 1`);
  return reshape(x, x.shape.filter((_, i) => !at.includes(i)));
}

/** Merges axes `start..end` (inclusive) into one, like torch.flatten. */
export function flatten(x: Value, start = 0, end = -1): Value {
  const [s, e] = [normalizeAxis(start, x.rank), normalizeAxis(end, x.rank)];
  const merged = numel(x.shape.slice(s, e + 1));
  return reshape(x, [...x.shape.slice(0, s), merged, ...x.shape.slice(e + 1)]);
}

/** A tensor of zeros (a broadcast scalar: nothing large is stored in the model). */
export function zeros(graph: Value['graph'], shape: Shape, dtype: DType = 'float32'): Value {
  return expand(graph.scalar(0, dtype), shape);
}

/**
 * Adds `updates` into a zero tensor at `positions` along `axis` (duplicates accumulate): the adjoint of
 * gathering those positions. `positions` are constants or an int tensor of one entry per update slot.
 */
export function scatterAddAlong(updates: Value, positions: readonly number[] | Value, axis: number, size: number): Value {
  const g = updates.graph;
  const count = updates.shape[axis]!;
  const posShape = updates.shape.map((_, i) => (i === axis ? count : 1));
  const pos = Array.isArray(positions)
    ? g.constant(positions as readonly number[], posShape, 'int64')
    : reshape(positions as Value, posShape);
  const target = updates.shape.map((d, i) => (i === axis ? size : d));
  const zero = zeros(g, target, updates.dtype);
  return g.apply1('ScatterElements', [zero, expand(pos, updates.shape), updates], { axis, reduction: 'add' });
}

export function inversePermutation(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}
