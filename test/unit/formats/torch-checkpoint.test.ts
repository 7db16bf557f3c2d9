import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { readPickle, PickleError } from '../../../src/sidecar/formats/pickle';
import { readTorchCheckpoint, TorchCheckpointError } from '../../../src/sidecar/formats/torch-checkpoint';

const LPIPS = path.resolve(__dirname, '..', '..', 'fixtures', 'eval', 'lpips-alex');

/** A legacy torch.save file whose object is `posix.system('ls')`: what a hostile checkpoint would hold. */
function hostileLegacyCheckpoint(): Uint8Array {
  const magic = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];
  const protocol = [0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e];
  const info = [0x80, 0x02, 0x7d, 0x2e];
  const call = [...Buffer.from('\x80\x02cposix\nsystem\nX\x02\x00\x00\x00ls\x85R.', 'latin1')];
  return Uint8Array.from([...magic, ...protocol, ...info, ...call]);
}

describe('PyTorch checkpoints read without running them', () => {
  it('reads a zip checkpoint (torch ≥ 1.6) with float16 storages: names, shapes and dtypes of every tensor', () => {
    const tensors = readTorchCheckpoint(readFileSync(path.join(LPIPS, 'alexnet.pth')), 'alexnet.pth');
    assert.deepEqual([...tensors.keys()].sort(), ['features.0.bias', 'features.0.weight', 'features.10.bias', 'features.10.weight', 'features.3.bias', 'features.3.weight', 'features.6.bias', 'features.6.weight', 'features.8.bias', 'features.8.weight']);
    const conv0 = tensors.get('features.0.weight')!;
    assert.equal(conv0.dtype, 'F16');
    assert.deepEqual(conv0.shape, [64, 3, 11, 11]);
    assert.equal(conv0.data.length, 64 * 3 * 11 * 11 * 2);
  });

  it('reads a legacy checkpoint (five pickles, then raw storages)', () => {
    const tensors = readTorchCheckpoint(readFileSync(path.join(LPIPS, 'alex.pth')), 'alex.pth');
    assert.deepEqual([...tensors.keys()], [0, 1, 2, 3, 4].map((k) => `lin${k}.model.1.weight`));
    const channels = [64, 192, 384, 256, 256];
    tensors.forEach((t, name) => {
      const k = Number(name[3]);
      assert.equal(t.dtype, 'F32');
      assert.deepEqual(t.shape, [1, channels[k], 1, 1]);
      const values = new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
      // The generator drew them from U[0, 0.2): real data, not zeros or garbage.
      assert.ok(values.every((v) => v >= 0 && v < 0.2) && values.some((v) => v > 0), name);
    });
  });

  it('refuses a checkpoint that asks for a function, naming it, and runs nothing', () => {
    assert.throws(
      () => readTorchCheckpoint(hostileLegacyCheckpoint(), 'evil.pth'),
      (error: unknown) => error instanceof TorchCheckpointError && /posix\.system/.test(error.message) && /never runs code/.test(error.message),
    );
  });

  it('does not accept tensor records in plain pickles (DragBench meta data)', () => {
    const pickle = Buffer.from('\x80\x02ctorch._utils\n_rebuild_tensor_v2\n.', 'latin1');
    assert.throws(() => readPickle(pickle, { source: 'meta_data.pkl' }), (error: unknown) => error instanceof PickleError && /torch\._utils\._rebuild_tensor_v2/.test(error.message));
  });

  it('says a truncated zip checkpoint is cut off or damaged', () => {
    const bytes = readFileSync(path.join(LPIPS, 'alexnet.pth'));
    assert.throws(() => readTorchCheckpoint(bytes.subarray(0, bytes.length - 200), 'alexnet.pth'), (error: unknown) => error instanceof TorchCheckpointError && /cut off or damaged|damaged/.test(error.message));
  });

  it('says a file that is no checkpoint at all is neither format', () => {
    assert.throws(() => readTorchCheckpoint(Buffer.from('hello'), 'notes.pth'), (error: unknown) => error instanceof TorchCheckpointError && /neither a zip nor a legacy/.test(error.message));
  });
});
