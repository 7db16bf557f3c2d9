import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { NumpyArray, NumpyDType, PickleError, PickleGlobal, isPickleTuple, readPickle, type PickleValue } from '../../../src/sidecar/formats/pickle';

const PICKLES = path.resolve(__dirname, '..', '..', 'fixtures', 'batch', 'pickles');

function fixture(name: string): Uint8Array {
  return readFileSync(path.join(PICKLES, `${name}.pkl`));
}

/** The value in the JSON form make-pickles.py writes next to each fixture. */
function asJson(value: PickleValue): unknown {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'bigint') return { int: value.toString() };
  if (typeof value === 'number') return Number.isInteger(value) && !Object.is(value, -0) ? { int: String(value) } : { float: value };
  if (value instanceof Uint8Array) return { bytes: Buffer.from(value).toString('hex') };
  if (value instanceof Map) return { dict: [...value].map(([k, v]) => [asJson(k), asJson(v)]) };
  if (value instanceof NumpyArray) {
    const view = new DataView(value.data.buffer, value.data.byteOffset, value.data.byteLength);
    const values = Array.from({ length: value.size }, (_, i) => scalarJson(value.dtype, value.dtype.read(view, i * value.dtype.itemSize)));
    return { ndarray: { dtype: value.dtype.name, shape: [...value.shape], values } };
  }
  if (value instanceof NumpyDType || value instanceof PickleGlobal) throw new Error(`unexpected ${String(value)}`);
  const items = (value as readonly PickleValue[]).map(asJson);
  return isPickleTuple(value) ? { tuple: items } : { list: items };
}

function scalarJson(dtype: NumpyDType, value: number | bigint | boolean): unknown {
  if (typeof value === 'boolean') return value;
  if (dtype.kind === 'f') return { float: value };
  return { int: value.toString() };
}

/**
 * One text for both sides. JS numbers do not tell Python's 1.0 from 1, so integers and floats are compared as numbers
 * (integers beyond 2^53 stay exact: the reader returns them as bigints).
 */
function normalise(json: unknown): string {
  return JSON.stringify(json, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const record = v as Record<string, unknown>;
      if ('int' in record) return { number: String(record.int) };
      if ('float' in record) return { number: String(record.float) };
    }
    return v;
  });
}

function expected(name: string): unknown {
  // Python writes Infinity as a bare token, which JSON.parse does not accept.
  const text = readFileSync(path.join(PICKLES, `${name}.expected.json`), 'utf8').replace(/-Infinity/g, '"-Infinity"').replace(/(?<!-)Infinity/g, '"Infinity"');
  return JSON.parse(text, (_key, v: unknown) => (v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v));
}

function assertRefused(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => readPickle(bytes, { source: 'meta_data.pkl' }),
    (error: unknown) => {
      assert.ok(error instanceof PickleError, `expected a PickleError, got ${String(error)}`);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

/** A pickle assembled by hand: opcodes as characters or numbers, strings as latin-1 bytes. */
function bytesOf(...parts: (string | number | Uint8Array)[]): Uint8Array {
  const out: number[] = [];
  for (const part of parts) {
    if (typeof part === 'number') out.push(part);
    else if (typeof part === 'string') for (const c of part) out.push(c.charCodeAt(0));
    else out.push(...part);
  }
  return Uint8Array.from(out);
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

describe('readPickle on files written by Python', () => {
  const valueFixtures = readdirSync(PICKLES)
    .filter((f) => f.endsWith('.expected.json'))
    .map((f) => f.replace(/\.expected\.json$/, ''));

  it('has fixtures for every protocol it claims', () => {
    for (const name of ['dragbench-numpy1-p2', 'dragbench-numpy1-p3', 'dragbench-numpy1-p4', 'dragbench-numpy2-p5', 'values-p0', 'values-p2', 'values-p5']) {
      assert.ok(valueFixtures.includes(name), `${name}.pkl is missing; run test/fixtures/batch/make-pickles.py`);
    }
  });

  for (const name of valueFixtures) {
    it(`reads ${name}.pkl exactly as Python does`, () => {
      assert.equal(normalise(asJson(readPickle(fixture(name)))), normalise(expected(name)));
    });
  }

  it('returns typed numpy arrays (dtype, shape, C-order numbers)', () => {
    const sample = readPickle(fixture('dragbench-numpy1-p2')) as Map<string, PickleValue>;
    const mask = sample.get('mask');
    assert.ok(mask instanceof NumpyArray);
    assert.equal(mask.dtype.name, 'uint8');
    assert.deepEqual(mask.shape, [6, 8]);
    const numbers = mask.toNumbers();
    assert.equal(numbers.reduce((a, b) => a + b, 0), 12);
    assert.equal(numbers[1 * 8 + 2], 1);
    assert.equal(numbers[0], 0);

    const values = readPickle(fixture('values-p5')) as Map<string | number, PickleValue>;
    const fortran = values.get('int32 big-endian fortran') as NumpyArray;
    assert.equal(fortran.dtype.littleEndian, false);
    assert.deepEqual([...fortran.toNumbers()], [-2, -1, 0, 1, 2, 3]);
  });

  for (const name of ['large-dragbench-p0', 'large-dragbench-p1', 'large-dragbench-p2', 'large-dragbench-python2']) {
    it(`reads a 1 MiB prompt and a 512 × 512 mask from ${name}.pkl (text lines and latin-1 strings of megabytes)`, () => {
      const sample = readPickle(fixture(name)) as Map<string, PickleValue>;
      // large_dragbench_sample() in make-pickles.py
      assert.equal(sample.get('prompt'), 'a photo of a cat '.repeat(61681).slice(0, 1 << 20));
      const mask = sample.get('mask');
      assert.ok(mask instanceof NumpyArray);
      assert.deepEqual(mask.shape, [512, 512]);
      const numbers = mask.toNumbers();
      assert.equal(numbers.reduce((a, b) => a + b, 0), 256 * 384);
      assert.equal(numbers[128 * 512 + 64], 1);
      assert.equal(numbers[128 * 512 + 63], 0);
      assert.equal(numbers[383 * 512 + 447], 1);
      assert.equal(numbers[384 * 512 + 447], 0);
    });
  }

  it('appends a list of 500 000 items at once (APPENDS)', () => {
    const count = 500_000;
    const bytes = bytesOf(0x80, 2, ']', '(', 'N'.repeat(count), 'e', '.');
    const list = readPickle(bytes) as PickleValue[];
    assert.equal(list.length, count);
  });

  it('keeps shared references shared (memo)', () => {
    const values = readPickle(fixture('values-p2')) as Map<string, PickleValue>;
    const twice = values.get('same twice') as PickleValue[];
    assert.equal(twice[0], twice[1]);
  });
});

describe('readPickle refuses anything that is not plain data', () => {
  const refusals: [string, RegExp][] = [
    ['evil-os-system-p2', /^Unsupported object posix\.system in meta_data\.pkl \(at byte \d+\): CLIPDrag reads only plain data .* never runs code/],
    ['evil-eval-p4', /^Unsupported object builtins\.eval in meta_data\.pkl/],
    ['evil-subprocess-p5', /^Unsupported object subprocess\.check_output in meta_data\.pkl/],
    ['evil-numpy-function-p4', /^Unsupported object numpy\.[\w.]*load in meta_data\.pkl/],
    ['evil-user-class-p4', /^Unsupported object __main__\.UserClass in meta_data\.pkl/],
    ['evil-user-class-p0', /^Unsupported object copy_reg\._reconstructor in meta_data\.pkl/],
  ];
  for (const [name, pattern] of refusals) {
    it(`refuses ${name}.pkl by the name it asks for`, () => assertRefused(fixture(name), pattern));
  }

  it('refuses class-instantiating opcodes before anything runs', () => {
    // INST: (  i__main__\nThing\n .
    assertRefused(bytesOf('(', 'i__main__\nThing\n', '.'), /Unsupported object __main__\.Thing|opcode INST/);
    assertRefused(bytesOf(0x80, 2, ')', 0x81, '.'), /opcode NEWOBJ \(creates an instance of a class\), which is not supported/);
    assertRefused(bytesOf(0x80, 2, ']', 'o', '.'), /opcode OBJ/);
    assertRefused(bytesOf(0x80, 2, 'K', 1, 'Q', '.'), /opcode BINPERSID/);
    assertRefused(bytesOf(0x80, 2, 0x82, 1, '.'), /opcode EXT1/);
    assertRefused(bytesOf(0x80, 5, 0x97, '.'), /opcode NEXT_BUFFER/);
  });

  it('refuses BUILD on anything but numpy arrays and dtypes (no __setstate__, no attribute writes)', () => {
    assertRefused(bytesOf(0x80, 2, '}', '}', 'b', '.'), /sets the state of a dict \(BUILD\); only numpy arrays and dtypes can be built/);
  });

  it('refuses REDUCE on values that are not allow-listed constructors', () => {
    assertRefused(bytesOf(0x80, 2, 'N', ')', 'R', '.'), /calls REDUCE on a None, which is not callable data/);
  });

  it('refuses numpy arrays of Python objects and arrays of other types', () => {
    // numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b') then BUILD with an object dtype.
    const head = bytesOf(0x80, 2, 'cnumpy.core.multiarray\n_reconstruct\n', 'cnumpy\nndarray\n', 'K', 0, 0x85, 'C', 1, 'b', 0x87, 'R');
    const objectDtype = bytesOf('cnumpy\ndtype\n', 'X', u32(2), 'O8', 0x89, 0x88, 0x87, 'R');
    assertRefused(bytesOf(head, '(', 'K', 1, 'K', 1, 0x85, objectDtype, 0x89, ']', 't', 'b', '.'), /numpy dtype "O8", which is not supported/);
    const unicodeDtype = bytesOf('cnumpy\ndtype\n', 'X', u32(2), 'U4', 0x89, 0x88, 0x87, 'R');
    assertRefused(bytesOf(head, unicodeDtype, '.'), /numpy dtype "U4"/);
    assertRefused(bytesOf(0x80, 2, 'cnumpy\nndarray\n', ')', 'R', '.'), /calls numpy\.ndarray directly/);
  });

  it('refuses arrays whose data does not match their shape', () => {
    const head = bytesOf(0x80, 2, 'cnumpy.core.multiarray\n_reconstruct\n', 'cnumpy\nndarray\n', 'K', 0, 0x85, 'C', 1, 'b', 0x87, 'R');
    const u1 = bytesOf('cnumpy\ndtype\n', 'X', u32(2), 'u1', 0x89, 0x88, 0x87, 'R');
    // shape (2, 3) but 5 bytes of data
    assertRefused(bytesOf(head, '(', 'K', 1, 'K', 2, 'K', 3, 0x86, u1, 0x89, 'C', 5, 'abcde', 't', 'b', '.'), /shape \(2, 3\) with 5 bytes of data instead of 6/);
    // an absurd shape is refused before anything is allocated
    assertRefused(bytesOf(head, '(', 'K', 1, 'J', u32(0x7fffffff), 'J', u32(0x7fffffff), 0x86, u1, 0x89, 'C', 0, 't', 'b', '.'), /at most \d+ are supported/);
  });

  it('reports damaged files clearly, without reading past the end or allocating what a length claims', () => {
    assertRefused(new Uint8Array(), /meta_data\.pkl is empty/);
    assertRefused(bytesOf(0x80, 4, 0x8c, 5, 'ab'), /is cut off: an item needs 5 bytes, but only 2 remain/);
    assertRefused(bytesOf(0x80, 4, 'X', u32(0xfffffff0), 'abc'), /is cut off: an item needs 4294967280 bytes/);
    assertRefused(bytesOf(0x80, 4, 0x8e, new Uint8Array(8).fill(0xff), '.'), /is cut off: an item claims 18446744073709551615 bytes/);
    assertRefused(bytesOf(0x80, 2, 'N'), /is cut off \(it ends without a STOP opcode\)/);
    assertRefused(bytesOf(0x80, 6, 'N', '.'), /uses pickle protocol 6; protocols 0 to 5 are supported/);
    assertRefused(bytesOf(0x80, 2, 'h', 3, '.'), /refers to memo entry 3, which was never stored/);
    assertRefused(bytesOf(0x80, 2, 'N', 'N', '.'), /ends with 2 values on the stack instead of 1/);
    assertRefused(bytesOf(0x80, 2, 'a', '.'), /pops a value from an empty stack/);
    assertRefused(bytesOf(0x80, 2, 'K', 1, 'K', 2, 'a', '.'), /appends to a int; expected a list/);
    assertRefused(bytesOf(0x80, 2, 0xff, '.'), /unknown opcode 0xff; it is not a Python pickle, or it is damaged/);
    assertRefused(bytesOf(0x80, 2, 0x8a, 100, new Uint8Array(100), '.'), /integer of 100 bytes; at most 64 are supported/);
    assertRefused(bytesOf(0x80, 3, 0x8c, 2, 0xc3, 0x28, '.'), /text that is not valid UTF-8/);
    assertRefused(bytesOf(0x80, 2, '}', ']', 'N', 's', '.'), /uses a list as a dict key/);
  });

  it('names the file and the byte where it failed', () => {
    assert.throws(() => readPickle(bytesOf(0x80, 2, 'N', 'N', 0xfe, '.'), { source: 'animals/cat/meta_data.pkl' }), (error: unknown) => {
      assert.ok(error instanceof PickleError);
      assert.equal(error.offset, 4);
      assert.match(error.message, /^Cannot read animals\/cat\/meta_data\.pkl: .* \(at byte 4\)\.$/);
      return true;
    });
  });
});
