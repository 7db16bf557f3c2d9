// Single-file checkpoints in the original (LDM) layout: our key mapping gives exactly the tensors diffusers' own
// single-file conversion gives (test/fixtures/single-file/, made by make-single-file.py with diffusers' code).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { mapLdmCheckpoint, type LdmComponent } from '../../../src/sidecar/models/checkpoint/ldm-layout';
import { ModelLayoutError } from '../../../src/sidecar/models/checkpoint/layout-error';
import { withSafetensorsFile, type SafetensorsFile } from '../../../src/sidecar/models/checkpoint/safetensors';

const FIXTURES = path.resolve(__dirname, '..', '..', 'fixtures', 'single-file');
const CHECKPOINT = path.join(FIXTURES, 'tiny-sd15-ldm.safetensors');
type Recorded = Record<LdmComponent, Record<string, { dtype: string; shape: number[]; sha256: string }>>;
const DIFFUSERS: Recorded = JSON.parse(readFileSync(path.join(FIXTURES, 'tiny-sd15-ldm.diffusers.json'), 'utf8')) as Recorded;

/** sha256 of the tensor's values as float32 little-endian bytes (how the generator hashes diffusers' tensors). */
async function float32Digest(file: SafetensorsFile, name: string): Promise<string> {
  const info = file.info(name);
  const values = info.dtype === 'I64' ? Float32Array.from(await file.readInt64(name), Number) : await file.readFloat32(name);
  return createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex');
}

function shapes(file: SafetensorsFile): Map<string, readonly number[]> {
  return new Map(file.tensors().map((t) => [t.name, t.shape]));
}

describe('LDM single-file checkpoint mapping', () => {
  it('names, shapes and values equal diffusers\' conversion of the same file, component by component', async () => {
    await withSafetensorsFile(CHECKPOINT, async (file) => {
      const mapping = mapLdmCheckpoint(CHECKPOINT, shapes(file));
      for (const component of ['unet', 'vae', 'text_encoder'] as const) {
        const expected = DIFFUSERS[component];
        const ours = mapping[component];
        assert.deepEqual([...ours.keys()].sort(), Object.keys(expected).sort(), `${component}: the same tensor names`);
        for (const [name, mapped] of ours) {
          assert.deepEqual(mapped.shape, expected[name]!.shape, `${component} ${name}: shape`);
          assert.equal(await float32Digest(file, mapped.source), expected[name]!.sha256, `${component} ${name}: values (from ${mapped.source})`);
        }
      }
    });
  });

  it('leaves out the DDPM buffers, and names the file when a component or a tensor does not fit', async () => {
    await withSafetensorsFile(CHECKPOINT, async (file) => {
      const all = shapes(file);
      const mapped = mapLdmCheckpoint(CHECKPOINT, all);
      const sources = new Set([...Object.values(mapped)].flatMap((m) => [...m.values()].map((t) => t.source)));
      assert.deepEqual([...all.keys()].filter((k) => !sources.has(k)).sort(), ['alphas_cumprod', 'alphas_cumprod_prev', 'betas']);

      const noVae = new Map([...all].filter(([k]) => !k.startsWith('first_stage_model.')));
      assert.throws(() => mapLdmCheckpoint(CHECKPOINT, noVae), (e: unknown) => e instanceof ModelLayoutError && e.message.startsWith(`${CHECKPOINT}: has no VAE tensors (first_stage_model.*)`));
      const stray = new Map([...all, ['model.diffusion_model.label_emb.0.0.weight', [4, 4]]]);
      assert.throws(() => mapLdmCheckpoint(CHECKPOINT, stray), /model\.diffusion_model\.label_emb\.0\.0\.weight has no counterpart in the diffusers unet/);
    });
  });
});
