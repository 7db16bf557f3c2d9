// Pure parts of the pipeline: the seeded random generator, the projection fusion rule, the working geometry.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { guidanceTextOf } from '../../../src/sidecar/pipeline/edit/edit';
import { toImagePixels, toSupervision, workingSize } from '../../../src/sidecar/pipeline/edit/edit-input';
import { fuse, fuseByProjection } from '../../../src/sidecar/pipeline/drag/glms';
import { SeededRandom } from '../../../src/sidecar/pipeline/runtime/random';

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i]!, 0);

describe('SeededRandom', () => {
  it('repeats its sequence for a seed and stream, and differs across them', () => {
    const draw = (seed: number, stream: number) => {
      const random = new SeededRandom(seed, stream);
      return Array.from({ length: 8 }, () => random.nextUint32());
    };
    assert.deepEqual(draw(42, 1), draw(42, 1));
    const a = new SeededRandom(42, 1);
    const b = new SeededRandom(42, 2);
    const c = new SeededRandom(43, 1);
    const seqA = Array.from({ length: 16 }, () => a.nextUint32());
    assert.notDeepEqual(seqA, Array.from({ length: 16 }, () => b.nextUint32()));
    assert.notDeepEqual(seqA, Array.from({ length: 16 }, () => c.nextUint32()));
  });

  it('draws standard normals and bounded integers', () => {
    const random = new SeededRandom(7);
    const values = random.normals(40000);
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length;
    assert.ok(Math.abs(mean) < 0.02, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.03, `variance ${variance}`);
    const counts = new Array<number>(5).fill(0);
    for (let i = 0; i < 5000; i++) counts[random.integer(5)]!++;
    assert.ok(counts.every((n) => n > 900 && n < 1100), `integer counts ${counts}`);
    assert.throws(() => random.integer(0), /positive integer/);
  });
});

describe('gradient fusion', () => {
  const gLocal = Float32Array.from([1, 0, 0, 0]);
  it('projection, consistent gradients: adds only the perpendicular part of G_g', () => {
    const gGlobal = Float32Array.from([2, 3, 0, 0]);
    const { gradient, cosine } = fuseByProjection(gLocal, gGlobal, 0.5);
    assert.ok(cosine > 0);
    assert.deepEqual([...gradient], [1, 1.5, 0, 0]);
  });
  it('projection, contradicting gradients: adds only the parallel part of G_g, shrinking G_l', () => {
    const gGlobal = Float32Array.from([-1, 4, 0, 0]);
    const { gradient, cosine } = fuseByProjection(gLocal, gGlobal, 0.5);
    assert.ok(cosine < 0);
    assert.deepEqual([...gradient], [0.5, 0, 0, 0]);
    // The code rule instead scales all of G_g (direction included).
    const official = fuse('official', gLocal, gGlobal, 0.5).gradient;
    assert.ok(Math.abs(dot(official, Float32Array.from([0, 1, 0, 0]))) > 0.1);
  });
});

describe('working geometry', () => {
  it('resizes to the working width with a height that is a multiple of 8', () => {
    assert.deepEqual(workingSize({ width: 600, height: 450 }, 512), { width: 512, height: 384 });
    assert.deepEqual(workingSize({ width: 768, height: 512 }, 512), { width: 512, height: 344 });
    assert.deepEqual(workingSize({ width: 4000, height: 10 }, 512), { width: 512, height: 8 });
    assert.throws(() => workingSize({ width: 10, height: 10 }, 100), /multiple of 8/);
  });

  it('maps points to the supervision grid as the reference (rounding half to even) and clamps the last row and column', () => {
    assert.deepEqual(toSupervision([100, 50], { width: 512, height: 512 }, [256, 256]), [25, 50]);
    assert.deepEqual(toSupervision([3, 5], { width: 512, height: 512 }, [256, 256]), [2, 2]);
    assert.deepEqual(toSupervision([511, 511], { width: 512, height: 512 }, [256, 256]), [255, 255]);
    assert.deepEqual(toImagePixels([25, 50], { width: 512, height: 512 }, [256, 256]), [100, 50]);
  });

  it('takes the edit prompt as CLIP text, else the prompt, else none', () => {
    assert.equal(guidanceTextOf('a cat', 'a dog'), 'a dog');
    assert.equal(guidanceTextOf('a cat', '  '), 'a cat');
    assert.equal(guidanceTextOf('a cat', undefined), 'a cat');
    assert.equal(guidanceTextOf('', ''), null);
  });
});
