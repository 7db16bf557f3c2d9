/**
 * Static memory accounting of an engine graph with a backward pass appended by `vjp`: the bytes of the
 * weights, and of the activations the backward pass reads from the forward pass (what must stay alive
 * between the two, the dominant term of a gradient step's peak). Backward nodes are those `vjp` put under
 * the `grad` (or `recompute.`) module path, and every node that reads a backward value (the sums `vjp` builds
 * where a value fans out carry the scope they were built in; no forward node reads a backward value). Values computed from weights and constants alone (casts,
 * flipped kernels) are not kept activations: they are made where their layer runs (onnx/serialize.ts).
 *
 * It is an estimate of what any runtime must hold, not a measurement: onnxruntime's allocator adds
 * transient buffers (the largest op's inputs and outputs, workspaces) and may fuse or share some.
 */
import { BYTES_PER_ELEMENT, type DType } from './dtype';
import { weightAndConstantNodes, type Graph, type Node, type Value } from './graph';

export interface GraphMemory {
  /** Weights in the dtype they are held in at run time. */
  readonly weightBytes: number;
  /** Forward activations read by the backward pass. */
  readonly savedActivationBytes: number;
  /** The largest single forward activation (a lower bound of the transient extra). */
  readonly largestActivationBytes: number;
  readonly savedActivations: number;
}

const isBackward = (scope: string) => scope === 'grad' || scope.startsWith('grad.') || scope.startsWith('recompute.');
const bytes = (v: Value) => v.size * BYTES_PER_ELEMENT[v.dtype];

/** `weightDtype`: the dtype the weights are held in at run time (a checkpoint cast at load counts as its target). */
export function graphMemory(graph: Graph, weightDtype: DType): GraphMemory {
  // Values that depend on weights and constants only: made where their layer runs, never kept for the backward.
  const constantLike = new Set<Value>([...weightAndConstantNodes(graph)].flatMap((n) => n.outputs));
  const weightBytes = graph.weights.reduce((sum, w) => sum + w.size * BYTES_PER_ELEMENT[weightDtype], 0);
  const backward = new Set<Node>();
  for (const node of graph.nodes) {
    if (isBackward(node.scope) || node.inputs.some((v) => v.producer !== null && backward.has(v.producer))) backward.add(node);
  }
  const saved = new Set<Value>();
  let largest = 0;
  for (const node of graph.nodes) {
    if (backward.has(node)) {
      for (const v of node.inputs) {
        const producer = v.producer;
        if (producer && !backward.has(producer) && !constantLike.has(v)) saved.add(v);
      }
    } else {
      for (const o of node.outputs) if (!constantLike.has(o)) largest = Math.max(largest, bytes(o));
    }
  }
  const savedActivationBytes = [...saved].reduce((sum, v) => sum + bytes(v), 0);
  return { weightBytes, savedActivationBytes, largestActivationBytes: largest, savedActivations: saved.size };
}
