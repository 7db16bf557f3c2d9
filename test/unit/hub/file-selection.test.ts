import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isModelStoreError, selectModelFiles } from '../../../src/sidecar/hub';

// The file list of the real stable-diffusion-v1-5 repo (main branch), as its tree API lists it.
const SD15_REPO_FILES = [
  '.gitattributes', 'README.md', 'feature_extractor/preprocessor_config.json', 'model_index.json',
  'safety_checker/config.json', 'safety_checker/model.fp16.safetensors', 'safety_checker/model.safetensors',
  'safety_checker/pytorch_model.bin', 'safety_checker/pytorch_model.fp16.bin', 'scheduler/scheduler_config.json',
  'text_encoder/config.json', 'text_encoder/model.fp16.safetensors', 'text_encoder/model.safetensors',
  'text_encoder/pytorch_model.bin', 'text_encoder/pytorch_model.fp16.bin', 'tokenizer/merges.txt',
  'tokenizer/special_tokens_map.json', 'tokenizer/tokenizer_config.json', 'tokenizer/vocab.json', 'unet/config.json',
  'unet/diffusion_pytorch_model.bin', 'unet/diffusion_pytorch_model.fp16.bin', 'unet/diffusion_pytorch_model.fp16.safetensors',
  'unet/diffusion_pytorch_model.non_ema.bin', 'unet/diffusion_pytorch_model.non_ema.safetensors',
  'unet/diffusion_pytorch_model.safetensors', 'v1-5-pruned-emaonly.ckpt', 'v1-5-pruned-emaonly.safetensors',
  'v1-5-pruned.ckpt', 'v1-5-pruned.safetensors', 'vae/config.json', 'vae/diffusion_pytorch_model.bin',
  'vae/diffusion_pytorch_model.fp16.bin', 'vae/diffusion_pytorch_model.fp16.safetensors', 'vae/diffusion_pytorch_model.safetensors',
];
const TOKENIZER = ['tokenizer/vocab.json', 'tokenizer/merges.txt', 'tokenizer/tokenizer_config.json', 'tokenizer/special_tokens_map.json'];

describe('selectModelFiles', () => {
  it('picks the fp32 safetensors of an SD-1.5 repo and nothing else', () => {
    const selection = selectModelFiles('stable-diffusion', SD15_REPO_FILES, 'fp32', 'sd');
    assert.deepEqual(selection.files, [
      'model_index.json', 'scheduler/scheduler_config.json',
      'unet/config.json', 'unet/diffusion_pytorch_model.safetensors',
      'vae/config.json', 'vae/diffusion_pytorch_model.safetensors',
      'text_encoder/config.json', 'text_encoder/model.safetensors',
      ...TOKENIZER,
    ]);
    assert.equal(selection.weightsPrecision, 'fp32');
    assert.deepEqual(selection.notes, []);
  });

  it('picks the fp16 variants when asked', () => {
    const selection = selectModelFiles('stable-diffusion', SD15_REPO_FILES, 'fp16', 'sd');
    assert.deepEqual(selection.files.filter((file) => file.endsWith('.safetensors')), [
      'unet/diffusion_pytorch_model.fp16.safetensors', 'vae/diffusion_pytorch_model.fp16.safetensors', 'text_encoder/model.fp16.safetensors',
    ]);
    assert.equal(selection.weightsPrecision, 'fp16');
  });

  it('falls back per component with a note, and reports mixed precision', () => {
    const files = SD15_REPO_FILES.filter((file) => file !== 'vae/diffusion_pytorch_model.fp16.safetensors');
    const selection = selectModelFiles('stable-diffusion', files, 'fp16', 'the repo x/y');
    assert.ok(selection.files.includes('vae/diffusion_pytorch_model.safetensors'));
    assert.equal(selection.weightsPrecision, 'mixed');
    assert.deepEqual(selection.notes, ['vae: no fp16 weights in the repo x/y; using the fp32 files instead.']);
    const fp16Only = selectModelFiles('clip', ['config.json', 'model.fp16.safetensors'], 'fp32', 'c');
    assert.deepEqual(fp16Only.files, ['config.json', 'model.fp16.safetensors']);
    assert.equal(fp16Only.weightsPrecision, 'fp16');
  });

  it('takes sharded weights with their index when every shard is there', () => {
    const shards = ['unet/diffusion_pytorch_model.safetensors.index.json', 'unet/diffusion_pytorch_model-00001-of-00002.safetensors', 'unet/diffusion_pytorch_model-00002-of-00002.safetensors'];
    const base = SD15_REPO_FILES.filter((file) => !file.startsWith('unet/diffusion_pytorch_model'));
    const selection = selectModelFiles('stable-diffusion', [...base, ...shards], 'fp32', 'sd');
    assert.deepEqual(selection.files.filter((file) => file.startsWith('unet/')), ['unet/config.json', ...shards]);
    assert.throws(() => selectModelFiles('stable-diffusion', [...base, ...shards.slice(0, 2)], 'fp32', 'sd'), /unet\/diffusion_pytorch_model\.safetensors/);
    const fp16Shards = ['unet/diffusion_pytorch_model.safetensors.index.fp16.json', 'unet/diffusion_pytorch_model.fp16-00001-of-00001.safetensors'];
    const half = selectModelFiles('stable-diffusion', [...base, ...shards, ...fp16Shards], 'fp16', 'sd');
    assert.deepEqual(half.files.filter((file) => file.startsWith('unet/')), ['unet/config.json', ...fp16Shards]);
  });

  it('requires a tokenizer only when the repo has one or model_index.json lists one', () => {
    const noTokenizer = SD15_REPO_FILES.filter((file) => !file.startsWith('tokenizer/'));
    assert.ok(!selectModelFiles('stable-diffusion', noTokenizer, 'fp32', 'sd', { tokenizer: [null, null] }).files.some((file) => file.startsWith('tokenizer/')));
    assert.throws(
      () => selectModelFiles('stable-diffusion', noTokenizer, 'fp32', 'sd', { tokenizer: ['transformers', 'CLIPTokenizer'] }),
      /missing files a Stable Diffusion pipeline needs: tokenizer\/vocab\.json; tokenizer\/merges\.txt\./,
    );
    const minimal = selectModelFiles('stable-diffusion', [...noTokenizer, 'tokenizer/vocab.json', 'tokenizer/merges.txt'], 'fp32', 'sd');
    assert.deepEqual(minimal.files.filter((file) => file.startsWith('tokenizer/')), ['tokenizer/vocab.json', 'tokenizer/merges.txt']);
  });

  it('names every missing file, and explains pickle-only weights', () => {
    const files = SD15_REPO_FILES.filter((file) => !file.endsWith('.safetensors') && file !== 'vae/config.json');
    assert.throws(
      () => selectModelFiles('stable-diffusion', files, 'fp32', 'the folder /m'),
      (error: unknown) => {
        assert.ok(isModelStoreError(error, 'MISSING_FILES'));
        assert.equal(
          error.message,
          'the folder /m is missing files a Stable Diffusion pipeline needs: unet/diffusion_pytorch_model.safetensors (the repo has only pickle weights); ' +
            'vae/config.json; vae/diffusion_pytorch_model.safetensors (the repo has only pickle weights); text_encoder/model.safetensors (the repo has only pickle weights). ' +
            'Pickle weights (.bin/.ckpt) are not loaded because they can run code: use a revision or copy of the model with .safetensors files.',
        );
        return true;
      },
    );
  });

  it('picks config.json and model.safetensors of a CLIPModel repo', () => {
    const clipRepo = ['.gitattributes', 'README.md', 'config.json', 'flax_model.msgpack', 'merges.txt', 'model.safetensors', 'preprocessor_config.json', 'pytorch_model.bin', 'special_tokens_map.json', 'tf_model.h5', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json'];
    assert.deepEqual(selectModelFiles('clip', clipRepo, 'fp32', 'clip').files, ['config.json', 'model.safetensors']);
    assert.throws(() => selectModelFiles('clip', clipRepo.filter((file) => file !== 'model.safetensors'), 'fp32', 'clip'), /model\.safetensors \(the repo has only pickle weights\)/);
  });
});
