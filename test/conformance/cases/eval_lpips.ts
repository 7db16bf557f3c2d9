/**
 * LPIPS (AlexNet, v0.1) as DragDiffusion's run_eval_similarity.py feeds it: the dragged image resized to the source
 * size with PIL BILINEAR, both in [−1, 1], bilinearly interpolated to 224 × 224; weights read from the `.pth` files
 * the reference publishes (converted to safetensors without executing them).
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Graph } from '../../../src/sidecar/engine/graph';
import { concat, reshape, resizeBilinear } from '../../../src/sidecar/engine/ops';
import { convertTorchCheckpoints } from '../../../src/sidecar/models/checkpoint/torch-conversion';
import { lpipsAlex } from '../../../src/sidecar/models/lpips';
import { lpipsInput, resultAtSourceSize } from '../../../src/sidecar/pipeline/evaluation/metric-inputs';
import { CheckpointWeights } from '../../../src/sidecar/models/weights';
import { runGraph } from '../../support/run-graph';
import { float32Tensor, type CaseRun } from '../case';
import type { Pixels8 } from '../../../src/sidecar/io/resize';
import type { GoldenTensors } from '../golden';
import { singleModelFolder } from '../single-model';

export const cases = ['eval_lpips'] as const;

/** An HWC uint8 golden image as 8-bit pixels. */
export async function goldenImage(golden: GoldenTensors, name: string): Promise<Pixels8> {
  const t = await golden.read(name);
  if (t.dtype !== 'U8' || t.shape.length !== 3) throw new Error(`${name} is ${t.dtype} [${t.shape.join(', ')}], expected U8 [H, W, C]`);
  return { height: t.shape[0]!, width: t.shape[1]!, channels: t.shape[2]!, data: t.data };
}

export const run: CaseRun = async (entry, golden, fixtureDir) => {
  const folder = singleModelFolder(entry, fixtureDir);
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'clipdrag-lpips-'));
  try {
    const converted = path.join(scratch, 'lpips-alex.safetensors');
    await convertTorchCheckpoints([path.join(folder, 'alexnet.pth'), path.join(folder, 'alex.pth')], converted);
    const weights = await CheckpointWeights.open(converted);

    const source = await goldenImage(golden, 'source_u8');
    const resized = resultAtSourceSize(await goldenImage(golden, 'dragged_u8'), source);

    const graph = new Graph('lpips');
    const shape = [1, 3, source.height, source.width];
    const a = resizeBilinear(graph.input('source', 'float32', shape), [224, 224]);
    const b = resizeBilinear(graph.input('dragged', 'float32', shape), [224, 224]);
    const result = lpipsAlex(weights, a, b);
    graph.output('source_224', a);
    graph.output('dragged_224', b);
    graph.output('per_layer', reshape(concat(result.perLayer.map((v) => reshape(v, [1])), 0), [5]));
    graph.output('lpips', reshape(result.distance, [1]));
    graph.output('lpips_same', reshape(lpipsAlex(weights, a, a).distance, [1]));
    weights.assertAllBound(graph);

    const out = await runGraph(graph, {
      source: lpipsInput(source),
      dragged: lpipsInput(resized),
    });
    return {
      outputs: {
        dragged_resized_u8: { dtype: 'U8', shape: [source.height, source.width, 3], data: resized.data },
        ...Object.fromEntries(graph.outputs.map(({ name, value }) => [name, float32Tensor(value.shape, out[name] as Float32Array)])),
      },
    };
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
};
