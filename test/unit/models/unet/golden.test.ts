import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import path from 'node:path';
import { loadUNet } from '../../../../src/sidecar/models/unet/load';
import type { UNetModel } from '../../../../src/sidecar/models/unet/unet';
import { GoldenTensors, readGoldenIndex, type GoldenCase as GoldenEntry } from '../../../conformance/golden';
import { FIXTURES, relativeL2 } from '../../../support/golden-case';
import { computeUNetCase, type CaseTensors, type UNetCaseName } from '../../../support/unet-cases';

interface Golden {
  readonly entry: GoldenEntry;
  readonly tensors: GoldenTensors;
}

const tensorsOf = ({ entry, tensors }: Golden): CaseTensors => ({
  settings: entry.settings,
  float32: (name) => tensors.float32(name),
  int64: (name) => tensors.int64(name),
  shape: (name) => tensors.shape(name),
});

/** The tolerance of an output; `grad.<adapter>…` outputs share the tolerance of their wildcard entry. */
function toleranceOf({ entry }: Golden, name: string): number {
  const toleranceIn = (spec: unknown) => (typeof spec === 'object' && spec !== null ? (spec as { tolerance?: number }).tolerance : undefined);
  const exact = toleranceIn(entry.outputs[name]);
  if (exact !== undefined) return exact;
  const wildcard = Object.entries(entry.outputs).find(([key]) => key.includes('<adapter>') && key.startsWith('grad.') === name.startsWith('grad.'));
  const tolerance = toleranceIn(wildcard?.[1]);
  if (tolerance === undefined) throw new Error(`${entry.name} has no tolerance for ${name}`);
  return tolerance;
}

// `npm run conformance` checks every UNet case; these two are also unit tests because they check more
// than the runner can: each of the 256 LoRA gradients on its own, and the rows of mutual attention.
const UNIT_CASES: readonly UNetCaseName[] = ['unet_lora', 'unet_masa'];

describe('UNet golden cases (tiny SD-1.5 UNet)', () => {
  const goldens = new Map<UNetCaseName, Golden>();
  let unet: UNetModel;

  before(async () => {
    const index = await readGoldenIndex(FIXTURES);
    for (const name of [...UNIT_CASES, 'unet_vjp' as const]) {
      const entry = index.cases.find((c) => c.name === name)!;
      goldens.set(name, { entry, tensors: await GoldenTensors.open(path.join(FIXTURES, entry.file)) });
    }
    unet = await loadUNet(path.join(FIXTURES, 'tiny-sd15', 'unet'));
  });
  after(async () => {
    for (const g of goldens.values()) await g.tensors.close();
  });

  for (const name of UNIT_CASES) {
    it(`${name}: every output within its tolerance`, async () => {
      const golden = goldens.get(name)!;
      const outputs = await computeUNetCase(name, unet, tensorsOf(golden));
      const expected = golden.tensors.names().filter((n) => n === 'eps' || n === 'eps_no_masa' || n === 'loss' || n.startsWith('feat_') || n.startsWith('grad'));
      assert.ok(expected.length > 0);
      for (const output of expected) {
        const actual = outputs[output];
        assert.ok(actual, `${name}: no output ${output} computed`);
        const error = relativeL2(actual, await golden.tensors.float32(output));
        const tolerance = toleranceOf(golden, output);
        assert.ok(error <= tolerance, `${name}.${output}: relative L2 error ${error.toExponential(3)} > ${tolerance}`);
      }
      if (name === 'unet_lora') assert.equal(expected.filter((n) => n.startsWith('grad.')).length, 256, 'all 128 adapters × (A, B)');
    });
  }

  it('query-chunked attention (forced 64 KiB chunks) reproduces the golden VJP and mutual attention', async () => {
    for (const name of ['unet_vjp', 'unet_masa'] as const) {
      const golden = goldens.get(name)!;
      const outputs = await computeUNetCase(name, unet, tensorsOf(golden), { attentionChunkBytes: 64 * 1024 });
      for (const [output, actual] of Object.entries(outputs)) {
        const error = relativeL2(actual, await golden.tensors.float32(output));
        assert.ok(error <= toleranceOf(golden, output), `${name}.${output} with chunked attention: ${error.toExponential(3)}`);
      }
    }
  });

  it('unet_masa: the source row is the plain forward, the edited row is not', async () => {
    const golden = goldens.get('unet_masa')!;
    const { eps, eps_no_masa: plain } = await computeUNetCase('unet_masa', unet, tensorsOf(golden));
    const half = eps!.length / 2;
    assert.ok(relativeL2(eps!.subarray(0, half), plain!.subarray(0, half)) < 1e-6, 'row 0 unchanged');
    assert.ok(relativeL2(eps!.subarray(half), plain!.subarray(half)) > 1e-3, 'row 1 attends to the source');
  });
});
