"""Tiny random-weight models and golden values for the DragBench evaluation metrics.

Writes test/fixtures/eval/:
  lpips-alex/alexnet.pth       AlexNet trunk (torchvision key names `features.N.*`), zip format, float16 storages
  lpips-alex/alex.pth          LPIPS v0.1 linear layers (`lin{0..4}.model.1.weight`), legacy (pre-zip) format
  clip-vit-b32/                transformers CLIPModel layout (config.json, model.safetensors), converted from
                               the OpenAI-layout state dict the golden values were computed with
  golden/index.json            every case: reference, settings, tensors with shapes and tolerances
  golden/eval_lpips.safetensors, golden/eval_clip.safetensors

The weights are random (seeded) and the widths are AlexNet's own (LPIPS hard-codes them) and a tiny ViT-B/32
(patch 32 at 224 pixels, width 64, one head). Golden values come from the reference code itself:
  - LPIPS: `lpips.LPIPS(net='alex', version='0.1')` of richzhang/PerceptualSimilarity, fed the way
    DragDiffusion's drag_bench_evaluation/run_eval_similarity.py feeds it (images in [-1, 1], bilinear
    F.interpolate to 224x224, the dragged image first resized to the source size with PIL BILINEAR);
  - CLIP: openai/CLIP's `build_model` and `_transform(224)` preprocessing, `encode_image`, normalised features
    and their dot product, in float32 (what `clip.load(..., device='cpu')` runs).

Run with Debian's PyTorch (apt-get install python3-torch python3-torchvision python3-numpy python3-pil), from the
repository root, with checkouts of the two reference repositories (their code is imported, never copied):

  python3 test/conformance/generators/make_eval_fixtures.py \
      --lpips-repo <PerceptualSimilarity checkout> --clip-repo <openai/CLIP checkout>
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

OUT = os.path.join('test', 'fixtures', 'eval')


def git_head(repo):
    try:
        return subprocess.check_output(['git', '-C', repo, 'rev-parse', 'HEAD'], text=True, stderr=subprocess.DEVNULL).strip()
    except Exception:
        return 'unknown commit'


def save_safetensors(path, tensors, metadata=None):
    """Writes safetensors without the safetensors package: header sorted as the fixtures' README describes."""
    dtypes = {torch.float32: 'F32', torch.float16: 'F16', torch.int64: 'I64', torch.uint8: 'U8'}
    items = sorted(tensors.items(), key=lambda kv: (-kv[1].element_size(), kv[0]))
    header, blobs, offset = {}, [], 0
    for name, t in items:
        data = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {'dtype': dtypes[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header['__metadata__'] = metadata
    raw = json.dumps(header, separators=(',', ':')).encode()
    raw += b' ' * ((8 - len(raw) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(len(raw).to_bytes(8, 'little'))
        f.write(raw)
        for b in blobs:
            f.write(b)


def spec(t, tol):
    return {'shape': list(t.shape), 'dtype': {torch.float32: 'F32', torch.int64: 'I64', torch.uint8: 'U8'}[t.dtype], 'tolerance': tol}


def test_images():
    """A source and a 'dragged' image of other sizes (so the resize to the source size runs) with structure at every
    scale: smooth gradients, a disc, and seeded noise."""
    rng = np.random.default_rng(7)
    h, w = 72, 96
    yy, xx = np.mgrid[0:h, 0:w]
    src = np.stack([xx * 255 / (w - 1), yy * 255 / (h - 1), 128 + 60 * np.sin(xx / 7.0) * np.cos(yy / 5.0)], -1)
    src[(yy - 30) ** 2 + (xx - 40) ** 2 < 15 ** 2] = [230, 40, 60]
    src = np.clip(src + rng.normal(0, 12, src.shape), 0, 255).astype(np.uint8)
    dh, dw = 64, 88
    dy, dx = np.mgrid[0:dh, 0:dw]
    drg = np.stack([dx * 255 / (dw - 1), dy * 255 / (dh - 1), 128 + 60 * np.sin(dx / 6.0) * np.cos(dy / 5.0)], -1)
    drg[(dy - 24) ** 2 + (dx - 50) ** 2 < 13 ** 2] = [230, 40, 60]
    drg = np.clip(drg + rng.normal(0, 12, drg.shape), 0, 255).astype(np.uint8)
    return src, drg


def to_minus1_1(a):
    """run_eval_similarity.preprocess_image: float / 127.5 - 1, HWC -> 1CHW."""
    return torch.from_numpy(a).float().div(127.5).sub(1).permute(2, 0, 1).unsqueeze(0)


def make_lpips(lpips_repo, src, drg, index):
    sys.path.insert(0, lpips_repo)
    import lpips  # noqa: E402  (the reference package, from the checkout)

    torch.manual_seed(0)
    model = lpips.LPIPS(pretrained=False, net='alex', version='0.1', pnet_rand=True, verbose=False)
    # The trunk is stored as float16 (half the bytes in the repository); the reference runs on the same values.
    features = {}
    for name, p in model.net.named_parameters():
        # lpips' alexnet splits torchvision's `features` into slice1..slice5 but keeps the original indices.
        idx = name.split('.')[1:]
        features['features.' + '.'.join(idx)] = p.data.half()
        p.data.copy_(p.data.half().float())
    for k in range(5):
        lin = getattr(model, f'lin{k}').model[1]
        lin.weight.data.copy_(torch.rand_like(lin.weight) * 0.2)
    model.eval()

    out = os.path.join(OUT, 'lpips-alex')
    os.makedirs(out, exist_ok=True)
    torch.save(features, os.path.join(out, 'alexnet.pth'))
    lin_state = {f'lin{k}.model.1.weight': getattr(model, f'lin{k}').model[1].weight.data.clone() for k in range(5)}
    torch.save(lin_state, os.path.join(out, 'alex.pth'), _use_new_zipfile_serialization=False)

    dragged_pil = Image.fromarray(drg).resize((src.shape[1], src.shape[0]), Image.BILINEAR)
    dragged_resized = np.array(dragged_pil)
    a = to_minus1_1(src)
    b = to_minus1_1(dragged_resized)
    with torch.no_grad():
        a224 = F.interpolate(a, (224, 224), mode='bilinear')
        b224 = F.interpolate(b, (224, 224), mode='bilinear')
        value, per_layer = model(a224, b224, retPerLayer=True)
        same = model(a224, a224)
    tensors = {
        'source_u8': torch.from_numpy(src),
        'dragged_u8': torch.from_numpy(drg),
        'dragged_resized_u8': torch.from_numpy(dragged_resized),
        'source_224': a224,
        'dragged_224': b224,
        'per_layer': torch.stack([p.reshape(()) for p in per_layer]),
        'lpips': value.reshape(1),
        'lpips_same': same.reshape(1),
    }
    save_safetensors(os.path.join(OUT, 'golden', 'eval_lpips.safetensors'), tensors)
    index['cases'].append({
        'name': 'eval_lpips',
        'file': 'golden/eval_lpips.safetensors',
        'model': 'lpips-alex (alexnet.pth: random AlexNet trunk, float16 storages, zip format; alex.pth: random v0.1 linear layers, legacy format)',
        'reference': [
            {'repo': f'richzhang/PerceptualSimilarity {git_head(lpips_repo)}', 'file': 'lpips/lpips.py', 'function': "LPIPS(net='alex', version='0.1').forward(in0, in1, retPerLayer=True)"},
            {'repo': 'Yujun-Shi/DragDiffusion', 'file': 'drag_bench_evaluation/run_eval_similarity.py', 'function': 'preprocess_image; PIL BILINEAR resize of the dragged image to the source size; F.interpolate(…, (224, 224), bilinear)'},
        ],
        'settings': {'source_size': [src.shape[0], src.shape[1]], 'dragged_size': [drg.shape[0], drg.shape[1]]},
        'inputs': {'source_u8': spec(tensors['source_u8'], 0.0), 'dragged_u8': spec(tensors['dragged_u8'], 0.0)},
        'outputs': {
            'dragged_resized_u8': spec(tensors['dragged_resized_u8'], 0.0),
            'source_224': spec(tensors['source_224'], 1e-6),
            'dragged_224': spec(tensors['dragged_224'], 1e-6),
            'per_layer': spec(tensors['per_layer'], 1e-4),
            'lpips': spec(tensors['lpips'], 1e-4),
            'lpips_same': {**spec(tensors['lpips_same'], 0.0), 'meaning': 'LPIPS of the source against itself: exactly 0'},
        },
    })


def openai_clip_state_dict(width=64, layers=2, patch=32, resolution=224, embed=32, text_width=64, text_layers=1, vocab=100, context=77):
    g = torch.Generator().manual_seed(1)
    r = lambda *shape, s=0.02: torch.randn(*shape, generator=g) * s  # noqa: E731
    grid = resolution // patch
    sd = {
        'visual.conv1.weight': r(width, 3, patch, patch),
        'visual.class_embedding': r(width, s=0.1),
        'visual.positional_embedding': r(grid * grid + 1, width, s=0.1),
        'visual.ln_pre.weight': 1 + r(width, s=0.1), 'visual.ln_pre.bias': r(width, s=0.1),
        'visual.ln_post.weight': 1 + r(width, s=0.1), 'visual.ln_post.bias': r(width, s=0.1),
        'visual.proj': r(width, embed, s=0.2),
        'token_embedding.weight': r(vocab, text_width),
        'positional_embedding': r(context, text_width, s=0.01),
        'ln_final.weight': 1 + r(text_width, s=0.1), 'ln_final.bias': r(text_width, s=0.1),
        'text_projection': r(text_width, embed, s=0.2),
        'logit_scale': torch.tensor(np.log(1 / 0.07), dtype=torch.float32),
    }

    def block(prefix, w):
        sd.update({
            f'{prefix}.attn.in_proj_weight': r(3 * w, w, s=0.1), f'{prefix}.attn.in_proj_bias': r(3 * w, s=0.05),
            f'{prefix}.attn.out_proj.weight': r(w, w, s=0.1), f'{prefix}.attn.out_proj.bias': r(w, s=0.05),
            f'{prefix}.ln_1.weight': 1 + r(w, s=0.1), f'{prefix}.ln_1.bias': r(w, s=0.1),
            f'{prefix}.ln_2.weight': 1 + r(w, s=0.1), f'{prefix}.ln_2.bias': r(w, s=0.1),
            f'{prefix}.mlp.c_fc.weight': r(4 * w, w, s=0.1), f'{prefix}.mlp.c_fc.bias': r(4 * w, s=0.05),
            f'{prefix}.mlp.c_proj.weight': r(w, 4 * w, s=0.1), f'{prefix}.mlp.c_proj.bias': r(w, s=0.05),
        })

    for i in range(layers):
        block(f'visual.transformer.resblocks.{i}', width)
    for i in range(text_layers):
        block(f'transformer.resblocks.{i}', text_width)
    return sd


def openai_to_transformers(sd):
    """OpenAI CLIP names -> transformers CLIPModel names (the layout of openai/clip-vit-base-patch32 on the hub)."""
    out = {}

    def layers(src_prefix, dst_prefix):
        i = 0
        while f'{src_prefix}.{i}.attn.in_proj_weight' in sd:
            s, d = f'{src_prefix}.{i}', f'{dst_prefix}.{i}'
            qw, kw, vw = sd[f'{s}.attn.in_proj_weight'].chunk(3)
            qb, kb, vb = sd[f'{s}.attn.in_proj_bias'].chunk(3)
            out.update({
                f'{d}.self_attn.q_proj.weight': qw, f'{d}.self_attn.q_proj.bias': qb,
                f'{d}.self_attn.k_proj.weight': kw, f'{d}.self_attn.k_proj.bias': kb,
                f'{d}.self_attn.v_proj.weight': vw, f'{d}.self_attn.v_proj.bias': vb,
                f'{d}.self_attn.out_proj.weight': sd[f'{s}.attn.out_proj.weight'], f'{d}.self_attn.out_proj.bias': sd[f'{s}.attn.out_proj.bias'],
                f'{d}.layer_norm1.weight': sd[f'{s}.ln_1.weight'], f'{d}.layer_norm1.bias': sd[f'{s}.ln_1.bias'],
                f'{d}.layer_norm2.weight': sd[f'{s}.ln_2.weight'], f'{d}.layer_norm2.bias': sd[f'{s}.ln_2.bias'],
                f'{d}.mlp.fc1.weight': sd[f'{s}.mlp.c_fc.weight'], f'{d}.mlp.fc1.bias': sd[f'{s}.mlp.c_fc.bias'],
                f'{d}.mlp.fc2.weight': sd[f'{s}.mlp.c_proj.weight'], f'{d}.mlp.fc2.bias': sd[f'{s}.mlp.c_proj.bias'],
            })
            i += 1
        return i

    v_layers = layers('visual.transformer.resblocks', 'vision_model.encoder.layers')
    t_layers = layers('transformer.resblocks', 'text_model.encoder.layers')
    out.update({
        'vision_model.embeddings.patch_embedding.weight': sd['visual.conv1.weight'],
        'vision_model.embeddings.class_embedding': sd['visual.class_embedding'],
        'vision_model.embeddings.position_embedding.weight': sd['visual.positional_embedding'],
        'vision_model.pre_layrnorm.weight': sd['visual.ln_pre.weight'], 'vision_model.pre_layrnorm.bias': sd['visual.ln_pre.bias'],
        'vision_model.post_layernorm.weight': sd['visual.ln_post.weight'], 'vision_model.post_layernorm.bias': sd['visual.ln_post.bias'],
        'visual_projection.weight': sd['visual.proj'].t().contiguous(),
        'text_model.embeddings.token_embedding.weight': sd['token_embedding.weight'],
        'text_model.embeddings.position_embedding.weight': sd['positional_embedding'],
        'text_model.final_layer_norm.weight': sd['ln_final.weight'], 'text_model.final_layer_norm.bias': sd['ln_final.bias'],
        'text_projection.weight': sd['text_projection'].t().contiguous(),
        'logit_scale': sd['logit_scale'].reshape(()),
    })
    return out, v_layers, t_layers


def make_clip(clip_repo, src, drg, index):
    sys.path.insert(0, clip_repo)
    if 'ftfy' not in sys.modules:
        # clip/__init__ imports the tokenizer, which imports ftfy (not packaged by Debian); images never reach it.
        import types
        sys.modules['ftfy'] = types.ModuleType('ftfy')
    from clip.model import build_model  # noqa: E402  (the reference code, from the checkout)
    from clip.clip import _transform  # noqa: E402

    # build_model's convert_weights rounds the weights to float16 (OpenAI's checkpoints are float16); rounding here
    # first makes the transformers-layout copy hold exactly the values the reference computed with.
    sd = {k: v.half().float() for k, v in openai_clip_state_dict().items()}
    model = build_model({k: v.clone() for k, v in sd.items()}).float().eval()  # clip.load on the CPU: float32
    preprocess = _transform(224)
    with torch.no_grad():
        pix_src = preprocess(Image.fromarray(src)).unsqueeze(0)
        # run_eval_similarity.py resizes the dragged image to the source size (PIL BILINEAR) before both metrics.
        dragged_resized = Image.fromarray(drg).resize((src.shape[1], src.shape[0]), Image.BILINEAR)
        pix_drg = preprocess(dragged_resized).unsqueeze(0)
        f_src = model.encode_image(pix_src)
        f_drg = model.encode_image(pix_drg)
        n_src = f_src / f_src.norm(dim=-1, keepdim=True)
        n_drg = f_drg / f_drg.norm(dim=-1, keepdim=True)
        sim = (n_src * n_drg).sum()

    hf, v_layers, t_layers = openai_to_transformers(sd)
    out = os.path.join(OUT, 'clip-vit-b32')
    width = sd['visual.conv1.weight'].shape[0]
    text_width = sd['ln_final.weight'].shape[0]
    config = {
        'architectures': ['CLIPModel'], 'model_type': 'clip', 'projection_dim': sd['visual.proj'].shape[1],
        'logit_scale_init_value': 2.6592, 'initializer_factor': 1.0,
        'vision_config': {'model_type': 'clip_vision_model', 'hidden_size': width, 'intermediate_size': 4 * width,
                          'num_attention_heads': width // 64, 'num_hidden_layers': v_layers, 'image_size': 224, 'patch_size': 32,
                          'num_channels': 3, 'hidden_act': 'quick_gelu', 'layer_norm_eps': 1e-5, 'projection_dim': sd['visual.proj'].shape[1]},
        'text_config': {'model_type': 'clip_text_model', 'hidden_size': text_width, 'intermediate_size': 4 * text_width,
                        'num_attention_heads': text_width // 64, 'num_hidden_layers': t_layers, 'vocab_size': sd['token_embedding.weight'].shape[0],
                        'max_position_embeddings': sd['positional_embedding'].shape[0], 'hidden_act': 'quick_gelu', 'layer_norm_eps': 1e-5,
                        'bos_token_id': 49406, 'eos_token_id': 49407, 'pad_token_id': 1, 'projection_dim': sd['visual.proj'].shape[1]},
    }
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
        f.write('\n')
    save_safetensors(os.path.join(out, 'model.safetensors'), hf, {'format': 'pt'})

    tensors = {
        'source_u8': torch.from_numpy(src), 'dragged_u8': torch.from_numpy(drg),
        'source_pixels': pix_src, 'dragged_pixels': pix_drg,
        'source_features': f_src, 'dragged_features': f_drg,
        'clip_similarity': sim.reshape(1),
    }
    save_safetensors(os.path.join(OUT, 'golden', 'eval_clip.safetensors'), tensors)
    index['cases'].append({
        'name': 'eval_clip',
        'file': 'golden/eval_clip.safetensors',
        'model': 'clip-vit-b32 (tiny ViT-B/32 layout: patch 32 at 224, width 64, 1 head, 2 layers; transformers names)',
        'reference': [
            {'repo': f'openai/CLIP {git_head(clip_repo)}', 'file': 'clip/model.py', 'function': 'build_model(state_dict).float(); encode_image'},
            {'repo': f'openai/CLIP {git_head(clip_repo)}', 'file': 'clip/clip.py', 'function': '_transform(224): PIL BICUBIC resize of the short side, center crop, normalise'},
            {'repo': 'Yujun-Shi/DragDiffusion', 'file': 'drag_bench_evaluation/run_eval_similarity.py', 'function': 'features / norm, (a * b).sum()'},
        ],
        'settings': {'dragged': 'resized to the source size with PIL BILINEAR first, as for LPIPS (see eval_lpips dragged_resized_u8)'},
        'inputs': {'source_u8': spec(tensors['source_u8'], 0.0), 'dragged_u8': spec(tensors['dragged_u8'], 0.0)},
        'outputs': {
            'source_pixels': spec(pix_src, 1e-5), 'dragged_pixels': spec(pix_drg, 1e-5),
            'source_features': spec(f_src, 1e-4), 'dragged_features': spec(f_drg, 1e-4),
            'clip_similarity': spec(tensors['clip_similarity'], 1e-5),
        },
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--lpips-repo', required=True)
    parser.add_argument('--clip-repo', required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    src, drg = test_images()
    index = {
        'format': 'as test/fixtures/golden/index.json: every tensor of a case in its safetensors file; tolerance = max relative L2 error (0 = exact)',
        'torch': f'{torch.__version__} (CPU, float32, 1 thread)',
        'generator': 'test/conformance/generators/make_eval_fixtures.py',
        'cases': [],
    }
    make_lpips(args.lpips_repo, src, drg, index)
    make_clip(args.clip_repo, src, drg, index)
    index['model_sha256'] = {}
    for root, _, files in os.walk(OUT):
        for name in sorted(files):
            path = os.path.join(root, name)
            if '/golden/' in path.replace(os.sep, '/') + '/' and name.endswith('.json'):
                continue
            with open(path, 'rb') as f:
                index['model_sha256'][os.path.relpath(path, OUT).replace(os.sep, '/')] = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(OUT, 'golden', 'index.json'), 'w') as f:
        json.dump(index, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
