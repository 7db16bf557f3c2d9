import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadUNet } from '../../../src/sidecar/models/unet/load';
import { BLOCK_GRADIENT_MEMORY, DEFAULT_GRADIENT_MEMORY, gradientMemoryPolicy, gradientSessionOptions } from '../../../src/sidecar/pipeline/runtime/gradient-memory';
import { loraTrainingGraph } from '../../../src/sidecar/pipeline/lora/lora-training-graph';
import { TINY_SD } from '../../support/tiny-pipeline';

describe('gradient graph memory policy', () => {
  it('recomputes attention by default and whole blocks with rematerialize, both without the memory pattern', () => {
    assert.deepEqual(gradientMemoryPolicy(false), DEFAULT_GRADIENT_MEMORY);
    assert.deepEqual(gradientMemoryPolicy(true), BLOCK_GRADIENT_MEMORY);
    assert.equal(DEFAULT_GRADIENT_MEMORY.recompute, 'attention');
    assert.equal(BLOCK_GRADIENT_MEMORY.recompute, 'blocks');
    assert.deepEqual(gradientSessionOptions(DEFAULT_GRADIENT_MEMORY), { enableMemPattern: false });
    assert.deepEqual(gradientSessionOptions(BLOCK_GRADIENT_MEMORY), { enableMemPattern: false });
  });

  it('the LoRA training graph recomputes what its policy names', async () => {
    const unet = await loadUNet(path.join(TINY_SD, 'unet'));
    const recomputed = (rematerialize: boolean) =>
      loraTrainingGraph(unet, { batch: 1, height: 8, width: 8, tokens: 77, rank: 2, rematerialize }).graph.nodes.filter((n) => n.scope.startsWith('recompute.'));
    const attention = recomputed(false);
    assert.ok(attention.length > 0, 'the default recomputes something');
    for (const node of attention) {
      assert.match(node.scope, /\.attn1$/, node.scope);
      assert.ok(['MatMul', 'Softmax'].includes(node.op), `${node.scope}: ${node.op}`);
    }
    const blocks = recomputed(true);
    assert.ok(blocks.some((n) => /\.resnets\.\d+\./.test(n.scope)), 'resnets are recomputed');
    assert.ok(blocks.some((n) => /\.attentions\.\d+\..*ff/.test(n.scope)), 'transformer feed-forwards are recomputed');
  });
});
