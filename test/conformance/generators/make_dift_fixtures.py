"""A tiny random-weight Stable Diffusion 2.1 and golden DIFT features / point matching for DragBench's mean distance.

Writes test/fixtures/eval/:
  tiny-sd21/                  diffusers StableDiffusionPipeline layout with SD-2.1's structure at tiny widths:
                              UNet with linear proj_in/proj_out, per-block head counts, upcast attention and
                              a cross-attention width equal to the text encoder's; transformers CLIPTextModel
                              text encoder with GELU (OpenCLIP's) and SD-2.1's token ids (bos 0, eos 2, pad 1);
                              SD-2.1's tokenizer settings (padding with "!"), the real CLIP BPE vocabulary;
                              DDIM scheduler config as SD-2.1's (v-prediction)
  golden/eval_dift.safetensors and its entry in golden/index.json (merged with what is there)

Golden values come from the reference code: DIFT's `MyUNet2DConditionModel` and `OneStepSDPipeline` of
Yujun-Shi/DragDiffusion `drag_bench_evaluation/dift_sd.py`, imported from a checkout, and the arithmetic of
`run_eval_point_matching.py` (bilinear resize of both feature maps to the image size, cosine similarity of the
source feature at each handle against the whole dragged map, argmax, Euclidean distance to the target).
Three things differ from running `SDFeaturizer` as is, each forced by this machine or diffusers' age and none
changing a value:
  - `SDFeaturizer.__init__`/`forward` hard-code CUDA; the same steps (repeat the image `ensemble_size` times,
    `_encode_prompt`, the one-step pipeline, the mean over the ensemble) run here on the CPU;
  - newer diffusers moved `diffusers.models.unet_2d_condition` to `diffusers.models.unets.unet_2d_condition`;
    the old name is aliased to the new module before `dift_sd` is imported;
  - `_encode_prompt` (deprecated) fails without classifier-free guidance in newer diffusers; `encode_prompt`, the
    method it wraps, gives the same embeddings.
The random numbers the pipeline draws (the VAE posterior sample and the diffusion noise) are recorded and stored,
since no other implementation can reproduce torch's generator.

Needs PyTorch 2, transformers and a diffusers source tree (the values in the repository: torch 2.13 CPU,
transformers 5.18, diffusers v0.40.0), from the repository root:

  PYTHONPATH=<diffusers>/src python3 test/conformance/generators/make_dift_fixtures.py \
      --dragdiffusion-repo <DragDiffusion checkout> --clip-bpe <folder with the CLIP vocab.json and merges.txt>
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_eval_fixtures import OUT, git_head, save_safetensors, spec, test_images  # noqa: E402

SD21 = os.path.join(OUT, 'tiny-sd21')
PROMPT = 'a photo of a red ball on a striped floor'


def randomize(model):
    """Random values everywhere (diffusers zero-initialises some output projections, which would hide paths):
    norms near 1, biases small, other weights scaled by their fan-in so activations stay in range."""
    with torch.no_grad():
        for module in model.modules():
            for name, p in module.named_parameters(recurse=False):
                if isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
                    p.copy_((1.0 if name == 'weight' else 0.0) + torch.randn_like(p) * 0.1)
                elif p.dim() == 1:
                    p.copy_(torch.randn_like(p) * 0.05)
                elif isinstance(module, nn.Embedding):
                    p.copy_(torch.randn_like(p) * 0.5)
                else:
                    p.copy_(torch.randn_like(p) / np.sqrt(p[0].numel()))


def build_tiny_sd21(clip_bpe):
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(3)
    text_width = 24
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(16, 16, 32, 32),
        down_block_types=('CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'),
        up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'),
        attention_head_dim=(2, 2, 4, 4),  # SD-2.1: (5, 10, 20, 20), a head count per block despite the name
        cross_attention_dim=text_width, norm_num_groups=8, use_linear_projection=True, upcast_attention=True,
        flip_sin_to_cos=True, freq_shift=0,
    )
    randomize(unet)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
        block_out_channels=(16, 16, 32, 32),
        down_block_types=('DownEncoderBlock2D',) * 4, up_block_types=('UpDecoderBlock2D',) * 4,
        sample_size=128, scaling_factor=0.18215,
    )
    randomize(vae)
    text_config = CLIPTextConfig(
        vocab_size=49408, hidden_size=text_width, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, hidden_act='gelu', layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2,
        pad_token_id=1, projection_dim=16,
    )
    text_encoder = CLIPTextModel(text_config)
    randomize(text_encoder)

    if os.path.exists(SD21):
        shutil.rmtree(SD21)
    unet.save_pretrained(os.path.join(SD21, 'unet'))
    vae.save_pretrained(os.path.join(SD21, 'vae'))
    # The hub's SD-2.1 text encoder (saved by transformers 4) names its tensors `text_model.*`; transformers 5 drops
    # the prefix when saving, so the file is written here with the hub's names.
    te_dir = os.path.join(SD21, 'text_encoder')
    text_encoder.config.save_pretrained(te_dir)
    state = {k if k.startswith('text_model.') else f'text_model.{k}': v for k, v in text_encoder.state_dict().items()}
    save_safetensors(os.path.join(te_dir, 'model.safetensors'), state, {'format': 'pt'})
    tok_dir = os.path.join(SD21, 'tokenizer')
    os.makedirs(tok_dir)
    for name in ('vocab.json', 'merges.txt'):
        shutil.copyfile(os.path.join(clip_bpe, name), os.path.join(tok_dir, name))
    # SD-2.1's tokenizer: CLIP BPE, padded with "!" (id 0) rather than the end token.
    tokenizer = CLIPTokenizer(os.path.join(tok_dir, 'vocab.json'), os.path.join(tok_dir, 'merges.txt'), pad_token='!', model_max_length=77)
    # The files of SD-2.1's tokenizer folder on the hub (no fast-tokenizer tokenizer.json).
    with open(os.path.join(tok_dir, 'special_tokens_map.json'), 'w') as f:
        json.dump({'bos_token': '<|startoftext|>', 'eos_token': '<|endoftext|>', 'pad_token': '!', 'unk_token': '<|endoftext|>'}, f, indent=2)
        f.write('\n')
    with open(os.path.join(tok_dir, 'tokenizer_config.json'), 'w') as f:
        json.dump({'add_prefix_space': False, 'bos_token': '<|startoftext|>', 'do_lower_case': True, 'eos_token': '<|endoftext|>',
                   'errors': 'replace', 'model_max_length': 77, 'pad_token': '!', 'tokenizer_class': 'CLIPTokenizer',
                   'unk_token': '<|endoftext|>'}, f, indent=2)
        f.write('\n')
    assert tokenizer.pad_token_id == 0
    scheduler = DDIMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule='scaled_linear', clip_sample=False,
        set_alpha_to_one=False, steps_offset=1, prediction_type='v_prediction', timestep_spacing='leading',
    )
    scheduler.save_pretrained(os.path.join(SD21, 'scheduler'))
    with open(os.path.join(SD21, 'model_index.json'), 'w') as f:
        json.dump({
            '_class_name': 'StableDiffusionPipeline', '_diffusers_version': '0.40.0',
            'feature_extractor': [None, None], 'requires_safety_checker': False, 'safety_checker': [None, None],
            'scheduler': ['diffusers', 'DDIMScheduler'], 'text_encoder': ['transformers', 'CLIPTextModel'],
            'tokenizer': ['transformers', 'CLIPTokenizer'], 'unet': ['diffusers', 'UNet2DConditionModel'],
            'vae': ['diffusers', 'AutoencoderKL'],
        }, f, indent=2)
        f.write('\n')


class Recorder:
    """Records the tensors torch's generator hands out inside the reference pipeline, in call order."""

    def __init__(self):
        self.draws = []

    def __enter__(self):
        import diffusers.models.autoencoders.vae as vae_module
        self.vae_module = vae_module
        self.randn_tensor = vae_module.randn_tensor
        self.randn_like = torch.randn_like

        def randn_tensor(*args, **kwargs):
            t = self.randn_tensor(*args, **kwargs)
            self.draws.append(('posterior', t.clone()))
            return t

        def randn_like(*args, **kwargs):
            t = self.randn_like(*args, **kwargs)
            self.draws.append(('noise', t.clone()))
            return t

        vae_module.randn_tensor = randn_tensor
        torch.randn_like = randn_like
        return self

    def __exit__(self, *exc):
        self.vae_module.randn_tensor = self.randn_tensor
        torch.randn_like = self.randn_like


def dift_features(pipe, image_u8, prompt, t, up_ft_index, ensemble_size):
    """SDFeaturizer.forward's steps on the CPU; returns (features [1,C,h,w], prompt_embeds, posterior, noise)."""
    img = (torch.from_numpy(image_u8).permute(2, 0, 1).float() / 255.0 - 0.5) * 2  # run_eval_point_matching
    img = img.unsqueeze(0).repeat(ensemble_size, 1, 1, 1)
    # SDFeaturizer calls `_encode_prompt`, which in diffusers >= 0.22 fails without classifier-free guidance; the
    # method it wraps gives the same embeddings.
    prompt_embeds = pipe.encode_prompt(prompt=prompt, device='cpu', num_images_per_prompt=1, do_classifier_free_guidance=False)[0]
    prompt_embeds = prompt_embeds.repeat(ensemble_size, 1, 1)
    with Recorder() as rec:
        out = pipe(img_tensor=img, t=t, up_ft_indices=[up_ft_index], prompt_embeds=prompt_embeds)
    draws = dict(rec.draws)
    assert [k for k, _ in rec.draws] == ['posterior', 'noise'], rec.draws
    ft = out['up_ft'][up_ft_index].mean(0, keepdim=True)
    return ft, prompt_embeds[:1], draws['posterior'], draws['noise']


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dragdiffusion-repo', required=True)
    parser.add_argument('--clip-bpe', required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)

    import diffusers
    import diffusers.models.unets.unet_2d_condition as unet_module
    sys.modules.setdefault('diffusers.models.unet_2d_condition', unet_module)
    sys.path.insert(0, os.path.join(args.dragdiffusion_repo, 'drag_bench_evaluation'))
    from dift_sd import MyUNet2DConditionModel, OneStepSDPipeline  # the reference classes
    from diffusers import DDIMScheduler
    import transformers

    build_tiny_sd21(args.clip_bpe)
    unet = MyUNet2DConditionModel.from_pretrained(SD21, subfolder='unet')
    pipe = OneStepSDPipeline.from_pretrained(SD21, unet=unet, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.vae.decoder = None
    pipe.scheduler = DDIMScheduler.from_pretrained(SD21, subfolder='scheduler')
    pipe.set_progress_bar_config(disable=True)

    # Images of a size the VAE takes (multiples of 8) and not square, so rows and columns cannot be swapped.
    src, drg = test_images()
    src = src[:64, :88]  # 64 x 88
    drg = np.ascontiguousarray(np.array(drg)[:64, :88])
    t, up_ft_index, ensemble = 261, 1, 8
    torch.manual_seed(42)  # run_eval_point_matching: seed_everything(42) once per result folder
    ft_src, embeds, post_src, noise_src = dift_features(pipe, src, PROMPT, t, up_ft_index, ensemble)
    ft_drg, _, post_drg, noise_drg = dift_features(pipe, drg, PROMPT, t, up_ft_index, ensemble)
    input_ids = pipe.tokenizer(PROMPT, padding='max_length', max_length=77, truncation=True, return_tensors='pt').input_ids

    # run_eval_point_matching: points are [x, y] in the file, [row, col] from then on
    H, W = src.shape[:2]
    handles = torch.tensor([[20, 30], [40, 70], [5, 80]])
    targets = torch.tensor([[24, 50], [30, 60], [60, 2]])
    up_src = F.interpolate(ft_src, (H, W), mode='bilinear')
    up_drg = F.interpolate(ft_drg, (H, W), mode='bilinear')
    cos = nn.CosineSimilarity(dim=1)
    matched, dists = [], []
    for hp, tp in zip(handles, targets):
        c = up_src.size(1)
        src_vec = up_src[0, :, hp[0], hp[1]].view(1, c, 1, 1)
        cos_map = cos(src_vec, up_drg).cpu().numpy()[0]
        max_rc = np.unravel_index(cos_map.argmax(), cos_map.shape)
        matched.append([int(max_rc[0]), int(max_rc[1])])
        dists.append((tp - torch.tensor(max_rc)).float().norm())
    dists = torch.stack(dists)

    tensors = {
        'source_u8': torch.from_numpy(np.ascontiguousarray(src)), 'dragged_u8': torch.from_numpy(drg),
        'input_ids': input_ids.to(torch.int64), 'prompt_embeds': embeds.float(),
        'source_posterior_noise': post_src, 'source_noise': noise_src,
        'dragged_posterior_noise': post_drg, 'dragged_noise': noise_drg,
        'source_features': ft_src, 'dragged_features': ft_drg,
        'handles': handles.to(torch.int64), 'targets': targets.to(torch.int64),
        'matched': torch.tensor(matched, dtype=torch.int64), 'distances': dists, 'mean_distance': dists.mean().reshape(1),
    }
    save_safetensors(os.path.join(OUT, 'golden', 'eval_dift.safetensors'), tensors)

    index_path = os.path.join(OUT, 'golden', 'index.json')
    with open(index_path) as f:
        index = json.load(f)
    index['cases'] = [c for c in index['cases'] if c['name'] != 'eval_dift']
    index['dift_environment'] = f'torch {torch.__version__} (CPU, float32, 1 thread), diffusers {diffusers.__version__}, transformers {transformers.__version__}'
    index['cases'].append({
        'name': 'eval_dift',
        'file': 'golden/eval_dift.safetensors',
        'model': 'tiny-sd21 (SD-2.1 structure: linear projections, head counts 2/2/4/4, upcast attention, GELU text encoder of width 24, padding with !)',
        'reference': [
            {'repo': f'Yujun-Shi/DragDiffusion {git_head(args.dragdiffusion_repo)}', 'file': 'drag_bench_evaluation/dift_sd.py', 'function': 'MyUNet2DConditionModel, OneStepSDPipeline; SDFeaturizer.forward steps on the CPU'},
            {'repo': 'Yujun-Shi/DragDiffusion', 'file': 'drag_bench_evaluation/run_eval_point_matching.py', 'function': 'image (x/255 - 0.5)*2; F.interpolate bilinear to (H, W); CosineSimilarity(dim=1); argmax; norm'},
        ],
        'settings': {'prompt': PROMPT, 't': t, 'up_ft_index': up_ft_index, 'ensemble_size': ensemble, 'seed': 42,
                     'points': '[row, col]; the reference swaps the file\'s [x, y] first',
                     'noise': 'posterior_noise: DiagonalGaussianDistribution.sample (latent = mean + std * n); noise: torch.randn_like for add_noise at t'},
        'inputs': {k: spec(tensors[k], 0.0) for k in ('source_u8', 'dragged_u8', 'source_posterior_noise', 'source_noise', 'dragged_posterior_noise', 'dragged_noise', 'handles', 'targets')},
        'outputs': {
            'input_ids': spec(tensors['input_ids'], 0.0),
            'prompt_embeds': spec(tensors['prompt_embeds'], 1e-4),
            'source_features': spec(ft_src, 1e-4), 'dragged_features': spec(ft_drg, 1e-4),
            'matched': spec(tensors['matched'], 0.0), 'distances': spec(dists, 1e-6), 'mean_distance': spec(tensors['mean_distance'], 1e-6),
        },
    })
    for root, _, files in os.walk(SD21):
        for name in sorted(files):
            path = os.path.join(root, name)
            with open(path, 'rb') as f:
                index['model_sha256'][os.path.relpath(path, OUT).replace(os.sep, '/')] = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(OUT, 'golden', 'eval_dift.safetensors'), 'rb') as f:
        index['model_sha256']['golden/eval_dift.safetensors'] = hashlib.sha256(f.read()).hexdigest()
    with open(index_path, 'w') as f:
        json.dump(index, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
