import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { SafetensorsError, SafetensorsFile, withSafetensorsFile, writeSafetensors } from '../../../../src/sidecar/models/checkpoint/safetensors';
import { float32ToBfloat16Bits, float32ToFloat16Bits } from '../../../../src/sidecar/engine/float16';
import { dtypeByteSize } from '../../../../src/sidecar/models/checkpoint/dtypes';

const FIXTURES = path.resolve(__dirname, '../../../fixtures');
const TEXT_ENCODER = path.join(FIXTURES, 'tiny-sd15/text_encoder/model.safetensors');
const TRACKING_GOLDEN = path.join(FIXTURES, 'golden/fast_point_tracking.safetensors');

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'safetensors-test-'));
}

/** Builds a file from a header object and a data section, the way a broken writer might. */
function rawFile(header: unknown, data: Uint8Array, options: { lengthOverride?: bigint; headerText?: string } = {}): Buffer {
  const text = options.headerText ?? JSON.stringify(header);
  const body = Buffer.from(text, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(options.lengthOverride ?? BigInt(body.length));
  return Buffer.concat([prefix, body, Buffer.from(data)]);
}

async function expectOpenError(bytes: Buffer, pattern: RegExp): Promise<void> {
  const dir = await tempDir();
  const file = path.join(dir, 'broken.safetensors');
  await fs.writeFile(file, bytes);
  await assert.rejects(SafetensorsFile.open(file), (err: unknown) => {
    assert.ok(err instanceof SafetensorsError, `expected SafetensorsError, got ${String(err)}`);
    assert.ok(err.message.includes(file), `message names the file: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });
  await fs.rm(dir, { recursive: true });
}

test('reads the fixture text encoder: header, absolute offsets, typed reads', async () => {
  await withSafetensorsFile(TEXT_ENCODER, async (file) => {
    assert.equal(file.names().length, 37);
    assert.deepEqual(file.metadata, { format: 'pt' });
    const ids = file.info('text_model.embeddings.position_ids');
    assert.equal(ids.dtype, 'I64');
    assert.deepEqual(ids.shape, [1, 77]);
    assert.equal(ids.byteOffset, file.dataOffset);
    assert.equal(ids.byteLength, 77 * 8);
    const positions = await file.readInt64('text_model.embeddings.position_ids');
    assert.deepEqual([...positions], Array.from({ length: 77 }, (_, i) => BigInt(i)));

    const tok = file.info('text_model.embeddings.token_embedding.weight');
    assert.deepEqual(tok.shape, [49408, 16]);
    // The absolute range must point at the same bytes a plain read of the file sees.
    const whole = await fs.readFile(TEXT_ENCODER);
    const viaRange = new Float32Array(whole.buffer.slice(whole.byteOffset + tok.byteOffset, whole.byteOffset + tok.byteOffset + tok.byteLength));
    const viaReader = await file.readFloat32(tok.name);
    assert.deepEqual(viaReader, viaRange);

    // Tensors cover the data section back to back.
    let cursor = file.dataOffset;
    for (const t of file.tensors()) {
      assert.equal(t.byteOffset, cursor);
      assert.equal(t.byteOffset % 8 === 0 || t.dtype !== 'I64', true);
      cursor += t.byteLength;
    }
    assert.equal(cursor, file.fileSize);

    await assert.rejects(file.readInt64(tok.name), /is F32, expected I64/);
    await assert.rejects(file.readFloat32('text_model.embeddings.position_ids'), /not a floating-point type/);
    assert.throws(() => file.info('missing.weight'), /no tensor named "missing.weight"/);
  });
});

test('writer reproduces reference-written files byte for byte', async () => {
  const dir = await tempDir();
  for (const source of [TEXT_ENCODER, TRACKING_GOLDEN]) {
    const copy = path.join(dir, path.basename(source));
    await withSafetensorsFile(source, async (file) => {
      // Shuffle the input order: the writer must impose the reference layout itself.
      const tensors = file.tensors().reverse().map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: () => file.readBytes(t.name) }));
      await writeSafetensors(copy, tensors, file.metadata);
    });
    assert.ok(Buffer.compare(await fs.readFile(source), await fs.readFile(copy)) === 0, `${path.basename(source)} differs`);
  }
  await fs.rm(dir, { recursive: true });
});

test('writer orders by element size then name, pads the header to 8, and round-trips every decoded dtype', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'mixed.safetensors');
  const values = new Float32Array([1, -2.5, 0.333333343, 65504, 1e-7, -0]);
  await writeSafetensors(
    file,
    [
      { name: 'b_u8', dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 255]) },
      { name: 'a_f16', dtype: 'F16', shape: [2, 3], data: float32ToFloat16Bits(values) },
      { name: 'c_i64', dtype: 'I64', shape: [2], data: new BigInt64Array([-5n, 1n << 40n]) },
      { name: 'd_f64', dtype: 'F64', shape: [2], data: new Float64Array([1.5, 1 / 3]) },
      { name: 'a_f32', dtype: 'F32', shape: [6], data: values },
      { name: 'z_bf16', dtype: 'BF16', shape: [6], data: float32ToBfloat16Bits(values) },
      { name: 'scalar', dtype: 'F32', shape: [], data: new Float32Array([7]) },
      { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    ],
    { note: 'test' },
  );
  const bytes = await fs.readFile(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  assert.equal(headerLength % 8, 0);
  await withSafetensorsFile(file, async (st) => {
    assert.deepEqual(st.names(), ['c_i64', 'd_f64', 'a_f32', 'empty', 'scalar', 'z_bf16', 'a_f16', 'b_u8']);
    for (const t of st.tensors()) assert.equal(t.byteOffset % dtypeByteSize(t.dtype), 0, `${t.name} is aligned to its element size`);
    assert.deepEqual([...(await st.readFloat32('d_f64'))], [1.5, Math.fround(1 / 3)]);
    assert.deepEqual(st.metadata, { note: 'test' });
    assert.deepEqual(await st.readFloat32('a_f32'), values);
    assert.deepEqual([...(await st.readFloat32('a_f16'))], [1, -2.5, 0.333251953125, 65504, 1.1920928955078125e-7, -0]);
    assert.deepEqual([...(await st.readFloat32('z_bf16'))], [1, -2.5, 0.333984375, 65536, 1.0011717677116394e-7, -0]);
    assert.deepEqual([...(await st.readInt64('c_i64'))], [-5n, 1n << 40n]);
    assert.deepEqual([...(await st.readUint8('b_u8'))], [1, 2, 255]);
    const scalar = await st.read('scalar');
    assert.deepEqual(scalar.shape, []);
    assert.deepEqual([...scalar.data], [7]);
    assert.equal((await st.readFloat32('empty')).length, 0);
  });
  await fs.rm(dir, { recursive: true });
});

test('writer rejects bad input and leaves nothing behind', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'out.safetensors');
  await assert.rejects(
    writeSafetensors(file, [{ name: 'x', dtype: 'F32', shape: [3], data: new Float32Array(2) }]),
    /needs 12 bytes, data has 8/,
  );
  await assert.rejects(
    writeSafetensors(file, [
      { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
      { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
    ]),
    /listed twice/,
  );
  await assert.rejects(writeSafetensors(file, [{ name: 'x', dtype: 'F32', shape: [-1], data: new Float32Array(0) }]), /non-negative/);
  assert.deepEqual(await fs.readdir(dir), []);

  // A failed rewrite keeps the previous file intact.
  await writeSafetensors(file, [{ name: 'x', dtype: 'F32', shape: [1], data: new Float32Array([3]) }]);
  const before = await fs.readFile(file);
  await assert.rejects(writeSafetensors(file, [{ name: 'y', dtype: 'F32', shape: [2], data: () => new Float32Array(1) }]));
  assert.deepEqual(await fs.readFile(file), before);
  assert.deepEqual(await fs.readdir(dir), ['out.safetensors']);
  await fs.rm(dir, { recursive: true });
});

test('corrupt and truncated files give errors naming the file and the problem', async () => {
  const good = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const data = new Uint8Array(8);
  await expectOpenError(Buffer.alloc(5), /5 bytes, too short/);
  await expectOpenError(rawFile(good, data, { lengthOverride: 1n << 40n }), /exceeds 104857600 bytes \(not a safetensors file/);
  await expectOpenError(rawFile(good, data, { lengthOverride: 4096n }), /truncated: the header claims 4096 bytes/);
  await expectOpenError(rawFile(null, data, { headerText: '{"w": {"dtype": "F32",' }), /not valid JSON/);
  await expectOpenError(rawFile(null, data, { headerText: '[1,2,3]' }), /does not start with "\{"/);
  await expectOpenError(rawFile(null, new Uint8Array(0), { headerText: '{"x":1}' }), /tensor "x": entry is not an object/);
  await expectOpenError(rawFile({ w: { ...good.w, dtype: 'F33' } }, data), /unknown dtype "F33"/);
  await expectOpenError(rawFile({ w: { ...good.w, shape: [2.5] } }, data), /shape must be an array of non-negative integers/);
  await expectOpenError(rawFile({ w: { ...good.w, shape: [3] } }, data), /F32 \[3\] needs 12 bytes but data_offsets \[0, 8\] span 8/);
  await expectOpenError(rawFile({ w: { ...good.w, data_offsets: [8, 0] } }, data), /end before they begin/);
  await expectOpenError(rawFile({ w: { ...good.w, data_offsets: [4, 12] } }, new Uint8Array(12)), /leaving a gap/);
  await expectOpenError(
    rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)),
    /overlapping/,
  );
  await expectOpenError(rawFile(good, new Uint8Array(4)), /truncated: tensors need 8 data bytes but only 4/);
  await expectOpenError(rawFile(good, new Uint8Array(12)), /4 bytes after the last tensor/);
  await expectOpenError(rawFile({ __metadata__: { n: 1 }, ...good }, data), /"__metadata__" must map strings to strings/);
  await assert.rejects(SafetensorsFile.open(path.join(os.tmpdir(), 'definitely-missing.safetensors')), /definitely-missing.safetensors: file not found/);

  // A cut-off copy of a real checkpoint.
  const whole = await fs.readFile(TEXT_ENCODER);
  await expectOpenError(whole.subarray(0, whole.length - 100), /truncated: tensors need \d+ data bytes/);
  await expectOpenError(whole.subarray(0, 1000), /truncated: the header claims/);
});
