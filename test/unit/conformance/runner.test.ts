/**
 * The conformance runner on a small synthetic fixture set with shapes and
 * parameters unlike the project's fixtures: it must take everything from
 * index.json, report PASS/FAIL/SKIP per tensor and set the exit status.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../../../src/sidecar/models/checkpoint/safetensors';

const RUNNER = path.resolve(__dirname, '../../conformance/run.ts');

const spec = (shape: number[], tolerance?: number) => ({ shape, dtype: 'F32', ...(tolerance === undefined ? {} : { tolerance }) });
const f32 = (name: string, shape: number[], data: number[]): TensorToWrite => ({ name, dtype: 'F32', shape, data: Float32Array.from(data) });

/** Adam in float64, written independently of the implementation under test. */
function adamReference(z0: number[], grads: number[][], lr: number): number[][] {
  let z = [...z0];
  const m = z0.map(() => 0);
  const v = z0.map(() => 0);
  return grads.map((g, k) => {
    const step = k + 1;
    z = z.map((zi, i) => {
      m[i] = 0.9 * m[i]! + 0.1 * g[i]!;
      v[i] = 0.999 * v[i]! + 0.001 * g[i]! ** 2;
      return zi - (lr / (1 - 0.9 ** step)) * (m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(1 - 0.999 ** step) + 1e-8));
    });
    return z;
  });
}

async function writeFixtureSet(dir: string, options: { wrongTrackingReference?: boolean; dropAdamReference?: boolean } = {}): Promise<void> {
  await fs.mkdir(path.join(dir, 'golden'), { recursive: true });
  const cases = [
    {
      name: 'adam', file: 'golden/adam.safetensors', model: 'none', settings: { lr: 0.05 },
      inputs: { z0: spec([2, 3]), grad_1: spec([2, 3]), grad_2: spec([2, 3]) },
      outputs: { z_1: spec([2, 3], 1e-6), z_2: spec([2, 3], 1e-6) },
    },
    {
      name: 'glms_fusion', file: 'golden/glms_fusion.safetensors', model: 'none',
      settings: { subcases: [{ index: 0, fuse_cof: 0.5 }] },
      inputs: { '0.G_l': spec([1, 2, 3, 5]), '0.G_g': spec([1, 2, 3, 5]) },
      outputs: { '0.cosine': spec([1], 1e-6), '0.G': spec([1, 2, 3, 5], 1e-6) },
    },
    {
      name: 'fast_point_tracking', file: 'golden/fast_point_tracking.safetensors', model: 'none',
      settings: { subcases: [{ index: 3, r_p: 2 }] },
      inputs: { F0: spec([1, 3, 5, 7]), F1: spec([1, 3, 5, 7]) },
      outputs: { '3.new_handle_points': spec([1, 2], 0) },
    },
    { name: 'no_such_handler', file: 'golden/adam.safetensors', model: 'none', settings: {}, inputs: {}, outputs: { x: spec([1], 0) } },
  ];
  await fs.writeFile(path.join(dir, 'golden', 'index.json'), JSON.stringify({ cases }));

  const z0 = [0.5, -1, 2, 0, 1, -0.25];
  const grads = [[1, -2, 0.5, 0.1, -0.3, 4], [0.2, 0.2, -1, 3, 0, -0.5]];
  const [z1, z2] = adamReference(z0, grads, 0.05);
  await writeSafetensors(path.join(dir, 'golden', 'adam.safetensors'), [
    f32('z0', [2, 3], z0),
    f32('grad_1', [2, 3], grads[0]!),
    f32('grad_2', [2, 3], grads[1]!),
    f32('z_1', [2, 3], z1!),
    ...(options.dropAdamReference ? [] : [f32('z_2', [2, 3], z2!)]),
  ]);

  const gl = Array.from({ length: 30 }, (_, i) => Math.sin(i + 1));
  const gg = Array.from({ length: 30 }, (_, i) => Math.cos(2 * i) - 0.2);
  const dot = gl.reduce((s, x, i) => s + x * gg[i]!, 0);
  const c = dot / Math.hypot(...gl) / Math.hypot(...gg);
  const w = c >= 0 ? 0.5 * Math.sqrt(1 - c * c) : 0.5 * c;
  await writeSafetensors(path.join(dir, 'golden', 'glms_fusion.safetensors'), [
    f32('0.G_l', [1, 2, 3, 5], gl),
    f32('0.G_g', [1, 2, 3, 5], gg),
    f32('0.cosine', [1], [c]),
    f32('0.G', [1, 2, 3, 5], gl.map((x, i) => x + w * gg[i]!)),
  ]);

  // Three channels on a 5x7 map: the initial handle's feature reappears only at (2, 5).
  const plane = 35;
  const f0 = new Array<number>(3 * plane).fill(0);
  const f1 = new Array<number>(3 * plane).fill(0);
  for (let ch = 0; ch < 3; ch++) {
    f0[ch * plane + 1 * 7 + 3] = ch + 1;
    f1[ch * plane + 2 * 7 + 5] = ch + 1;
  }
  const expected = options.wrongTrackingReference ? [2, 4] : [2, 5];
  await writeSafetensors(path.join(dir, 'golden', 'fast_point_tracking.safetensors'), [
    f32('F0', [1, 3, 5, 7], f0),
    f32('F1', [1, 3, 5, 7], f1),
    f32('3.handle_points', [1, 2], [1, 4]),
    f32('3.handle_points_init', [1, 2], [1, 3]),
    f32('3.target_points', [1, 2], [4, 6]),
    f32('3.new_handle_points', [1, 2], expected),
  ]);
}

function runRunner(args: string[]): { status: number | null; stdout: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', RUNNER, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout + r.stderr };
}

test('runner: passes, skips and fails per tensor, from index.json alone', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'conformance-'));
  await writeFixtureSet(dir);

  // A skipped case is not a pass: the default run fails on it, only --allow-skips lets it through.
  const strict = runRunner([dir]);
  assert.equal(strict.status, 1, strict.stdout);
  assert.match(strict.stdout, /skipped cases and outputs were not checked and count as failures/);
  assert.equal(runRunner([dir, '--strict']).status, 1);

  const ok = runRunner([dir, '--allow-skips']);
  assert.equal(ok.status, 0, ok.stdout);
  for (const label of ['adam/z_1', 'adam/z_2', 'glms_fusion/0.cosine', 'glms_fusion/0.G', 'fast_point_tracking/3.new_handle_points']) {
    assert.match(ok.stdout, new RegExp(`^PASS  ${label.replace('.', '\\.')}\\s`, 'm'));
  }
  assert.match(ok.stdout, /^SKIP {2}no_such_handler\s+\(not implemented\)$/m);
  assert.match(ok.stdout, /summary: 5 passed, 0 failed, 1 skipped .*\[--allow-skips\]/);

  await writeFixtureSet(dir, { wrongTrackingReference: true, dropAdamReference: true });
  const bad = runRunner([dir, '--case', 'fast_point_tracking', '--case', 'adam']);
  assert.equal(bad.status, 1, bad.stdout);
  assert.match(bad.stdout, /^FAIL {2}fast_point_tracking\/3\.new_handle_points\s+rel_err=\S+\s+tol=0$/m);
  assert.match(bad.stdout, /^FAIL {2}adam\/z_2\s+no reference tensor/m);
  assert.doesNotMatch(bad.stdout, /glms_fusion/);

  const usage = runRunner([dir, '--case', 'nope']);
  assert.equal(usage.status, 2);
  assert.match(usage.stdout, /no case named nope/);
  await fs.rm(dir, { recursive: true });
});
