import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp, { type Sharp } from 'sharp';
import {
  ImageFileError,
  decodeImage,
  encodeMaskPng,
  encodePng,
  readImageFile,
  readImageInfo,
  readMaskPng,
  rgbToSignedChw,
  rgbToUnitChw,
  unitChwToRgb,
  type RgbImage,
} from '../../../src/sidecar/io/image';
import { crc32, tableCrc32 } from '../../../src/sidecar/io/png-chunks';

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'clipdrag-image-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A small RGB test card: every pixel different. */
function testCard(width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 3;
      data[p] = (x * 37) % 256;
      data[p + 1] = (y * 53) % 256;
      data[p + 2] = (x * y * 11 + 7) % 256;
    }
  }
  return data;
}

async function writeImage(name: string, pipeline: Sharp): Promise<string> {
  const file = path.join(dir, name);
  await pipeline.toFile(file);
  return file;
}

function rawRgb(width: number, height: number, data: Buffer): Sharp {
  return sharp(data, { raw: { width, height, channels: 3 } });
}

async function expectImageError(promise: Promise<unknown>, problem: ImageFileError['problem'], pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ImageFileError, `expected an ImageFileError, got ${String(error)}`);
    assert.equal(error.problem, problem);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('decoding images', () => {
  it('decodes PNG and lossless WebP exactly, including .jpeg/.jpg names', async () => {
    const card = testCard(7, 5);
    for (const [name, pipeline] of [
      ['card.png', rawRgb(7, 5, card).png()],
      ['card.webp', rawRgb(7, 5, card).webp({ lossless: true })],
    ] as const) {
      const file = await writeImage(name, pipeline);
      const image = await readImageFile(file);
      assert.equal(image.width, 7);
      assert.equal(image.height, 5);
      assert.equal(image.channels, 3);
      assert.equal(image.hadAlpha, false);
      assert.deepEqual(Buffer.from(image.data), card, name);
    }
    const flat = Buffer.alloc(16 * 8 * 3, 90);
    for (const name of ['flat.jpg', 'flat.jpeg']) {
      const image = await readImageFile(await writeImage(name, rawRgb(16, 8, flat).jpeg({ quality: 95 })));
      assert.equal(image.format, 'jpeg');
      assert.ok(image.data.every((value) => Math.abs(value - 90) <= 2), name);
    }
  });

  it('decides the format by content, not by name', async () => {
    const file = await writeImage('really-a-png.jpg', rawRgb(2, 2, testCard(2, 2)).png());
    assert.equal((await readImageFile(file)).format, 'png');
  });

  it('applies the EXIF orientation', async () => {
    // 3 × 2 with orientation 6 (rotate 90° clockwise to display) becomes 2 × 3.
    const red = Buffer.alloc(18);
    [0, 40, 80, 120, 160, 200].forEach((value, i) => (red[i * 3] = value));
    const file = await writeImage('rotated.png', rawRgb(3, 2, red).png().withMetadata({ orientation: 6 }));
    const image = await readImageFile(file);
    assert.equal(image.width, 2);
    assert.equal(image.height, 3);
    assert.deepEqual([...image.data].filter((_, i) => i % 3 === 0), [120, 0, 160, 40, 200, 80]);
    assert.deepEqual(await readImageInfo(file), { width: 2, height: 3, format: 'png' });
  });

  it('composites transparency on white', async () => {
    const rgba = Buffer.from([
      10, 20, 30, 0, // fully transparent: white
      10, 20, 30, 255, // opaque: unchanged
      0, 0, 0, 128, // half-transparent black: mid grey
    ]);
    const file = await writeImage('alpha.png', sharp(rgba, { raw: { width: 3, height: 1, channels: 4 } }).png());
    const image = await readImageFile(file);
    assert.equal(image.hadAlpha, true);
    assert.deepEqual([...image.data.subarray(0, 6)], [255, 255, 255, 10, 20, 30]);
    for (const value of image.data.subarray(6)) assert.ok(Math.abs(value - 127) <= 1, `grey ${value}`);
  });

  it('expands grayscale and reduces 16-bit files to 8-bit RGB', async () => {
    const gray = await readImageFile(await writeImage('gray.png', sharp(Buffer.from([0, 100, 255, 7]), { raw: { width: 2, height: 2, channels: 1 } }).png()));
    assert.deepEqual([...gray.data], [0, 0, 0, 100, 100, 100, 255, 255, 255, 7, 7, 7]);
    const deep = await readImageFile(await writeImage('deep.png', rawRgb(2, 1, Buffer.from([200, 100, 50, 0, 255, 1])).toColourspace('rgb16').png()));
    assert.deepEqual([...deep.data], [200, 100, 50, 0, 255, 1]);
  });

  it('never modifies the source file', async () => {
    const file = await writeImage('source.webp', rawRgb(9, 4, testCard(9, 4)).webp({ lossless: true }));
    const before = { bytes: await readFile(file), mtime: (await stat(file)).mtimeMs };
    await readImageFile(file);
    await readImageInfo(file);
    assert.deepEqual(await readFile(file), before.bytes);
    assert.equal((await stat(file)).mtimeMs, before.mtime);
  });

  describe('errors name the file and say what to do', () => {
    it('truncated PNG', async () => {
      const png = await rawRgb(32, 32, testCard(32, 32)).png().toBuffer();
      const file = path.join(dir, 'truncated.png');
      await writeFile(file, png.subarray(0, Math.floor(png.length * 0.6)));
      await expectImageError(readImageFile(file), 'corrupt', /^The image "[^"]*truncated\.png" is damaged or incomplete and cannot be decoded \(.+\)\. Re-export it/);
    });

    it('PNG cut inside its header', async () => {
      const png = await rawRgb(4, 4, testCard(4, 4)).png().toBuffer();
      const file = path.join(dir, 'header.png');
      await writeFile(file, png.subarray(0, 30));
      await expectImageError(readImageFile(file), 'corrupt', /header\.png" is damaged or incomplete/);
    });

    it('random bytes with a .png name', async () => {
      const file = path.join(dir, 'noise.png');
      const noise = Buffer.alloc(4096);
      for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
      await writeFile(file, noise);
      await expectImageError(readImageFile(file), 'unsupported', /noise\.png" is not a PNG, JPEG or WebP image \(its content is not a known image format, whatever its name says\)/);
    });

    it('an empty file', async () => {
      const file = path.join(dir, 'empty.png');
      await writeFile(file, Buffer.alloc(0));
      await expectImageError(readImageFile(file), 'corrupt', /empty\.png" is empty \(0 bytes\)\. Save or export it again\./);
    });

    it('a known but unsupported format', async () => {
      const file = await writeImage('anim.gif', rawRgb(2, 2, testCard(2, 2)).gif());
      await expectImageError(readImageFile(file), 'unsupported', /anim\.gif" is a GIF file; CLIPDrag reads PNG, JPEG and WebP\. Convert it to PNG/);
    });

    it('a missing file and a folder', async () => {
      await expectImageError(readImageFile(path.join(dir, 'nope.png')), 'not-found', /nope\.png" does not exist/);
      const folder = path.join(dir, 'folder.png');
      await mkdir(folder);
      await expectImageError(readImageFile(folder), 'unreadable', /is a folder, not a file/);
    });

    /** The byte offset of a chunk's length field; the chunk's type follows it, then data and CRC. */
    function chunkOffset(png: Buffer, type: string): number {
      const at = png.indexOf(type, 8, 'latin1') - 4;
      assert.ok(at >= 8, `no ${type} chunk`);
      return at;
    }

    /** Rewrites a chunk's stored CRC to match its (changed) content, as a careful forger would. */
    function fixCrc(png: Buffer, type: string): void {
      const at = chunkOffset(png, type);
      const length = png.readUInt32BE(at);
      png.writeUInt32BE(crc32(png.subarray(at + 4, at + 8 + length)), at + 8 + length);
    }

    it('computes CRC-32 as PNG defines it, natively and with the table where zlib lacks it', () => {
      const check = new TextEncoder().encode('123456789');
      assert.equal(crc32(check), 0xcbf43926);
      assert.equal(tableCrc32(check), 0xcbf43926);
      const bytes = testCard(97, 31);
      assert.equal(tableCrc32(bytes), crc32(bytes));
    });

    it('a PNG whose IDAT or IHDR checksum does not match is refused like other damaged files', async () => {
      const png = await rawRgb(32, 32, testCard(32, 32)).png({ compressionLevel: 0 }).toBuffer();
      await decodeImage(png, 'intact.png'); // the unchanged file decodes
      // A flipped byte inside stored (uncompressed) pixel data: the decoder would accept it and show other pixels.
      const idat = Buffer.from(png);
      idat[chunkOffset(idat, 'IDAT') + 8 + 200]! ^= 0x40;
      await expectImageError(decodeImage(idat, 'bad-idat.png'), 'corrupt', /^The image "bad-idat\.png" is damaged or incomplete and cannot be decoded \(the IDAT chunk's checksum does not match its content\)\. Re-export it/);
      const file = path.join(dir, 'bad-idat.png');
      await writeFile(file, idat);
      await expectImageError(readImageFile(file), 'corrupt', /IDAT chunk's checksum/);
      await expectImageError(readImageInfo(file), 'corrupt', /IDAT chunk's checksum/);
      await expectImageError(readMaskPng(file), 'corrupt', /^The mask "[^"]*bad-idat\.png" is damaged or incomplete .*IDAT chunk's checksum/);
      // The image's width changed in the header, checksum left as it was.
      const ihdr = Buffer.from(png);
      ihdr.writeUInt32BE(31, 16);
      await expectImageError(decodeImage(ihdr, 'bad-ihdr.png'), 'corrupt', /bad-ihdr\.png" is damaged or incomplete and cannot be decoded \(the IHDR chunk's checksum does not match its content\)/);
    });

    it('an image over the pixel limit says so and names the limit, without decoding it', async () => {
      const png = Buffer.from(await rawRgb(4, 4, testCard(4, 4)).png().toBuffer());
      png.writeUInt32BE(20_000, 16);
      png.writeUInt32BE(20_000, 20);
      fixCrc(png, 'IHDR');
      await expectImageError(
        decodeImage(png, 'bomb.png'),
        'too-large',
        /^The image "bomb\.png" is 20000 × 20000 pixels, over CLIPDrag's limit of 268,402,689 pixels \(16383 × 16383\)\. Downscale it/,
      );
      const file = path.join(dir, 'bomb.png');
      await writeFile(file, png);
      await expectImageError(readImageInfo(file), 'too-large', /20000 × 20000 pixels, over CLIPDrag's limit/);
      await expectImageError(readMaskPng(file), 'too-large', /^The mask "[^"]*bomb\.png" is 20000 × 20000 pixels/);
    });

    it('a truncated JPEG and WebP from bytes', async () => {
      const jpeg = await rawRgb(32, 32, testCard(32, 32)).jpeg().toBuffer();
      await expectImageError(decodeImage(jpeg.subarray(0, jpeg.length / 2), 'half.jpg'), 'corrupt', /half\.jpg" is damaged or incomplete/);
      const webp = await rawRgb(32, 32, testCard(32, 32)).webp().toBuffer();
      await expectImageError(decodeImage(webp.subarray(0, webp.length - 16), 'cut.webp'), 'corrupt', /cut\.webp" is damaged or incomplete/);
    });
  });
});

describe('masks', () => {
  it('marks pixels editable when any colour channel is above 0', async () => {
    const rgb = Buffer.from([0, 0, 0, 255, 255, 255, 0, 0, 1, 1, 0, 0]);
    const file = await writeImage('mask-rgb.png', rawRgb(4, 1, rgb).png());
    assert.deepEqual([...(await readMaskPng(file)).data], [0, 1, 1, 1]);
  });

  it('treats fully transparent pixels as not editable, whatever colour they hide', async () => {
    const rgba = Buffer.from([255, 255, 255, 0, 255, 255, 255, 255, 0, 0, 0, 255, 9, 0, 0, 3]);
    const file = await writeImage('mask-rgba.png', sharp(rgba, { raw: { width: 4, height: 1, channels: 4 } }).png());
    assert.deepEqual([...(await readMaskPng(file)).data], [0, 1, 0, 1]);
  });

  it('round-trips through encodeMaskPng', async () => {
    const mask = { width: 5, height: 3, data: Uint8Array.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0]) };
    const file = path.join(dir, 'painted.png');
    await writeFile(file, await encodeMaskPng(mask));
    assert.deepEqual(await readMaskPng(file, { width: 5, height: 3 }), mask);
    assert.equal((await sharp(file).metadata()).channels, 1);
  });

  it('reports a mask whose size differs from the image', async () => {
    const file = await writeImage('small-mask.png', sharp(Buffer.alloc(6), { raw: { width: 3, height: 2, channels: 1 } }).png());
    await expectImageError(readMaskPng(file, { width: 4, height: 2 }), 'unsupported', /small-mask\.png" is 3 × 2 pixels, but the image is 4 × 2\. Paint the mask again/);
  });

  it('refuses masks that are not PNG, and corrupt masks', async () => {
    const jpeg = await writeImage('mask.jpg', rawRgb(2, 2, testCard(2, 2)).jpeg());
    await expectImageError(readMaskPng(jpeg), 'unsupported', /mask "[^"]*mask\.jpg" is a JPEG file; masks must be PNG/);
    const png = await rawRgb(64, 64, testCard(64, 64)).png().toBuffer();
    const broken = path.join(dir, 'broken-mask.png');
    await writeFile(broken, png.subarray(0, Math.floor(png.length / 2)));
    await expectImageError(readMaskPng(broken), 'corrupt', /^The mask "[^"]*broken-mask\.png" is damaged or incomplete/);
  });
});

describe('encoding and float layouts', () => {
  it('encodes PNG losslessly', async () => {
    const image: RgbImage = { width: 6, height: 4, channels: 3, data: new Uint8Array(testCard(6, 4)) };
    const png = await encodePng(image);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const decoded = await decodeImage(png, 'encoded.png');
    assert.deepEqual(decoded.data, image.data);
    await assert.rejects(encodePng({ ...image, data: new Uint8Array(5) }), /5 bytes does not match 6 × 4 × 3/);
  });

  it('converts to planar [-1, 1] like image / 127.5 - 1 in float32', () => {
    const image: RgbImage = { width: 2, height: 1, channels: 3, data: Uint8Array.from([0, 127, 255, 128, 1, 64]) };
    const chw = rgbToSignedChw(image);
    const expected = [0, 128, 127, 1, 255, 64].map((v) => Math.fround(Math.fround(v / 127.5) - 1));
    assert.deepEqual([...chw], expected);
    assert.equal(chw[0], -1);
    assert.equal(chw[4], 1);
    assert.deepEqual([...rgbToUnitChw(image)], [0, 128, 127, 1, 255, 64].map((v) => Math.fround(v / 255)));
  });

  it('converts planar [0, 1] back by truncating like astype(uint8), clamping out-of-range values', () => {
    // R plane, G plane, B plane of a 3 × 1 image.
    const planes = Float32Array.from([0.5, 1, 1.2, -0.1, NaN, 0.999, 0, 1 / 255, 2 / 255]);
    const rgb = unitChwToRgb(planes, 3, 1);
    assert.deepEqual([...rgb.data], [127, 0, 0, 255, 0, 1, 255, 254, 2]);
    assert.throws(() => unitChwToRgb(new Float32Array(8), 3, 1), /Expected 3 × 1 × 3 = 9 values, got 8/);
  });

  it('round-trips uint8 → [0, 1] → uint8 exactly', () => {
    const data = new Uint8Array(256 * 3);
    for (let i = 0; i < data.length; i++) data[i] = i % 256;
    const image: RgbImage = { width: 256, height: 1, channels: 3, data };
    assert.deepEqual(unitChwToRgb(rgbToUnitChw(image), 256, 1).data, data);
  });
});
