"""One stage of a drag edit as the official PyTorch code runs it, timed: the DragDiffusion drag iteration, the
CLIPDrag drag iteration (GLMS: local and CLIP gradients, fused) or the LoRA training step, on diffusers'
UNet2DConditionModel and AutoencoderKL built from a Stable Diffusion folder, and a CLIP ViT-B/16 image tower.

    python3 bench/pytorch-reference/drag_reference.py --stage drag|clipdrag|lora --model SD_FOLDER
        [--clip CLIP_FOLDER] [--size 256] [--repeat 2] [--warmup 1] [--threads N]

Prints one JSON object on stdout: the median and every timed step in milliseconds, RSS after loading and the
process's peak RSS. `npm run bench -- vs-pytorch` runs it beside our pipeline; see README.md here.

The iteration is written here, in the order of operations of the official code, not imported from it (that code
needs CUDA autocast, the `clip` package and torchvision): DragDiffusion's `drag_diffusion_update` and CLIPDrag's
(`utils/drag_utils.py`, with `cal_global_grad`), and `train_lora` of `utils/lora_utils.py` (identical in both).
Differences, all forced by running on a CPU in float32: no autocast / GradScaler (they are CUDA-only; the
official code's CPU path would run float32 too), the decoded x0 is not cast to float16 before the VAE decoder,
and the CLIP text embedding is computed once instead of every iteration (a text-tower forward, ≈1 % of the work).
"""

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_unet import stub_missing_hub_modules  # noqa: E402


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def load_safetensors_into(module, path, prefixes=('',)):
    """Reads float32 tensors of a .safetensors file straight into the module's parameters and buffers, one at a
    time, so loading holds the weights once (as diffusers does with low_cpu_mem_usage). Tensors whose name starts
    with none of `prefixes` are skipped; the rest must match the module's names and shapes exactly."""
    import torch

    targets = {name: tensor for name, tensor in module.state_dict(keep_vars=True).items()}
    with open(path, 'rb') as f:
        header_len = int.from_bytes(f.read(8), 'little')
        header = json.loads(f.read(header_len))
        loaded = set()
        for name, entry in header.items():
            # position_ids: an index buffer some checkpoints carry, not a weight.
            if name == '__metadata__' or not name.startswith(prefixes) or name.endswith('position_ids'):
                continue
            key = name
            if key not in targets:
                raise SystemExit(f'{path}: tensor {name} has no place in {type(module).__name__}')
            if entry['dtype'] != 'F32':
                raise SystemExit(f'{path}: tensor {name} is {entry["dtype"]}; this tool reads float32 checkpoints')
            target = targets[key]
            if list(target.shape) != entry['shape']:
                raise SystemExit(f'{path}: {name} has shape {entry["shape"]}, the model expects {list(target.shape)}')
            start, end = entry['data_offsets']
            f.seek(8 + header_len + start)
            with torch.no_grad():
                view = target.data.numpy().reshape(-1).view('uint8')
                if f.readinto(memoryview(view)) != end - start:
                    raise SystemExit(f'{path}: {name} is truncated')
            loaded.add(key)
    missing = [k for k in targets if k not in loaded and not k.endswith('position_ids')]
    if missing:
        raise SystemExit(f'{path}: no weights for {missing[:5]}…')


def use_matmul_attention_scores():
    """Attention scores as softmax(scale · q @ kᵀ) — what PyTorch 2 (the official code's version) computes through
    scaled_dot_product_attention — instead of diffusers' PyTorch-1 path, baddbmm with β = 0 over an uninitialised
    tensor: this PyTorch 1.13 build lets NaNs of that memory through (0 · NaN), so ε turns NaN at random."""
    import torch
    from diffusers.models.attention_processor import Attention

    def scores(self, query, key, attention_mask=None):
        products = torch.matmul(query, key.transpose(-1, -2)) * self.scale
        if attention_mask is not None:
            products = products + attention_mask
        return products.softmax(dim=-1).to(query.dtype)

    Attention.get_attention_scores = scores


def diffusers_model(cls, folder):
    with open(os.path.join(folder, 'config.json')) as f:
        config = json.load(f)
    model = cls.from_config(config).eval()
    load_safetensors_into(model, os.path.join(folder, 'diffusion_pytorch_model.safetensors'))
    return model


def clip_image_tower(folder):
    """CLIP's image encoder (the ViT of OpenAI's `encode_image`: patch conv, class token, positions, pre-LayerNorm,
    pre-norm blocks with QuickGELU, post-LayerNorm of the class token, projection) over a Hugging Face CLIPModel
    checkpoint, its module names matching that checkpoint's `vision_model.*` and `visual_projection` tensors."""
    import torch
    from torch import nn

    with open(os.path.join(folder, 'config.json')) as f:
        config = json.load(f)
    vc = config['vision_config']
    width, heads, layers = vc['hidden_size'], vc['num_attention_heads'], vc['num_hidden_layers']
    patch, image = vc['patch_size'], vc['image_size']
    eps = vc.get('layer_norm_eps', 1e-5)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(width, width) for _ in range(4))

        def forward(self, x):
            b, n, _ = x.shape
            split = lambda t: t.reshape(b, n, heads, width // heads).transpose(1, 2)
            q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
            scores = (q @ k.transpose(-1, -2)) * (width // heads) ** -0.5
            return self.out_proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, width))

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(width, vc['intermediate_size']), nn.Linear(vc['intermediate_size'], width)

        def forward(self, x):
            h = self.fc1(x)
            return self.fc2(h * torch.sigmoid(1.702 * h))

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer_norm1, self.self_attn = nn.LayerNorm(width, eps=eps), Attention()
            self.layer_norm2, self.mlp = nn.LayerNorm(width, eps=eps), Mlp()

        def forward(self, x):
            x = x + self.self_attn(self.layer_norm1(x))
            return x + self.mlp(self.layer_norm2(x))

    class Embeddings(nn.Module):
        def __init__(self):
            super().__init__()
            self.class_embedding = nn.Parameter(torch.empty(width))
            self.patch_embedding = nn.Conv2d(3, width, patch, patch, bias=False)
            self.position_embedding = nn.Embedding((image // patch) ** 2 + 1, width)

        def forward(self, pixels):
            x = self.patch_embedding(pixels).flatten(2).transpose(1, 2)
            x = torch.cat([self.class_embedding.expand(x.shape[0], 1, -1), x], dim=1)
            return x + self.position_embedding.weight

    class VisionModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.embeddings, self.pre_layrnorm = Embeddings(), nn.LayerNorm(width, eps=eps)
            self.encoder = nn.Module()
            self.encoder.layers = nn.ModuleList(Layer() for _ in range(layers))
            self.post_layernorm = nn.LayerNorm(width, eps=eps)

        def forward(self, pixels):
            x = self.pre_layrnorm(self.embeddings(pixels))
            for layer in self.encoder.layers:
                x = layer(x)
            return self.post_layernorm(x[:, 0])

    class ImageTower(nn.Module):
        def __init__(self):
            super().__init__()
            self.vision_model = VisionModel()
            self.visual_projection = nn.Linear(width, config['projection_dim'], bias=False)

        def forward(self, pixels):
            return self.visual_projection(self.vision_model(pixels))

    tower = ImageTower().eval()
    # The checkpoint holds the text tower too; only the image side is read.
    load_safetensors_into(tower, os.path.join(folder, 'model.safetensors'), prefixes=('vision_model.', 'visual_projection.'))
    return tower


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--check', action='store_true', help='only import PyTorch and diffusers and print their versions')
    parser.add_argument('--stage', choices=['drag', 'clipdrag', 'lora'])
    parser.add_argument('--model', help='Stable Diffusion folder (unet/, vae/ in diffusers layout, float32 safetensors)')
    parser.add_argument('--clip', help='CLIP ViT-B/16 folder (Hugging Face CLIPModel config.json + model.safetensors); clipdrag only')
    parser.add_argument('--size', type=int, default=256, help='image height and width in pixels (latent size/8)')
    parser.add_argument('--repeat', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=os.cpu_count(), help='intra-op threads (default: the CPU count)')
    args = parser.parse_args()
    if not args.check and not (args.stage and args.model):
        parser.error('--stage and --model are required')
    if args.stage == 'clipdrag' and not args.clip:
        raise SystemExit('--stage clipdrag needs --clip')

    stub_missing_hub_modules()
    try:
        import torch
        import torch.nn.functional as F
        from diffusers.models.autoencoder_kl import AutoencoderKL
        from diffusers.models.unet_2d_condition import UNet2DConditionModel
    except ImportError as error:
        raise SystemExit(f'{error}: needs PyTorch (Debian python3-torch) and diffusers v0.21.4 source on PYTHONPATH; see README.md')
    if args.check:
        import diffusers
        print(f'torch {torch.__version__}, diffusers {diffusers.__version__}')
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    use_matmul_attention_scores()

    unet = diffusers_model(UNet2DConditionModel, os.path.join(args.model, 'unet')).requires_grad_(False)
    vae = diffusers_model(AutoencoderKL, os.path.join(args.model, 'vae')).requires_grad_(False)
    clip = None
    if args.stage == 'clipdrag':
        clip = clip_image_tower(args.clip).requires_grad_(False)
    loaded_rss = rss_mb()

    latent = args.size // 8
    context = torch.randn(1, 77, unet.config.cross_attention_dim)
    # DDIM with SD-1.5's scheduler (scaled_linear 0.00085–0.012, 1000 steps); 50 steps, strength 0.7 → t* = 681.
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, 0).float()

    if args.stage == 'lora':
        step = lora_step(unet, vae, context, alphas_cumprod, args.size)
    else:
        step = drag_step(unet, vae, clip, context, alphas_cumprod, latent, args.size // 2, args.stage)

    for _ in range(args.warmup):
        step()
    times, parts = [], {}
    for _ in range(args.repeat):
        started = time.perf_counter()
        extra = step()
        times.append((time.perf_counter() - started) * 1000)
        for key, value in (extra or {}).items():
            parts.setdefault(key, []).append(value)
    print(json.dumps({
        'stage': args.stage,
        'size': args.size,
        'stepMs': round(statistics.median(times), 1),
        'stepsMs': [round(t, 1) for t in times],
        **{key: round(statistics.median(values), 1) for key, values in parts.items()},
        'loadedRssMb': round(loaded_rss, 1),
        'peakRssMb': round(peak_rss_mb(), 1),
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
    }))


def feature_patch(feat, y1, y2, x1, x2):
    """Bilinear patch of feat over rows [y1, y2) and columns [x1, x2) at fractional offsets: the four shifted
    integer crops weighted by the fractional parts (constant weights; the gradient flows through feat)."""
    import torch

    x0, y0 = torch.floor(x1).long(), torch.floor(y1).long()
    dx, dy = torch.floor(x2).long() - x0, torch.floor(y2).long() - y0
    fx, fy = x1 - x0.float(), y1 - y0.float()
    crop = lambda r, c: feat[:, :, r:r + dy, c:c + dx]
    return (crop(y0, x0) * (1 - fx) * (1 - fy) + crop(y0 + 1, x0) * (1 - fx) * fy
            + crop(y0, x0 + 1) * fx * (1 - fy) + crop(y0 + 1, x0 + 1) * fx * fy)


def window(p, radius, limit):
    return max(0, int(p[0]) - radius), min(limit, int(p[0]) + radius + 1), max(0, int(p[1]) - radius), min(limit, int(p[1]) + radius + 1)


def track(F0, F1, handles, handles_init, targets, radius, fast):
    """DragDiffusion's nearest-neighbour point tracking; with `fast`, CLIPDrag's FPT (only candidates strictly closer
    to the target)."""
    import torch

    with torch.no_grad():
        limit = F0.shape[-1]
        for i, (p, p0, t) in enumerate(zip(handles, handles_init, targets)):
            f0 = F0[:, :, int(p0[0]), int(p0[1])]
            r1, r2, c1, c2 = window(p, radius, limit)
            distance = (f0[..., None, None] - F1[:, :, r1:r2, c1:c2]).abs().sum(dim=1)[0]
            if fast:
                rows, cols = torch.meshgrid(torch.arange(r1, r2, dtype=torch.float32), torch.arange(c1, c2, dtype=torch.float32), indexing='ij')
                to_target = (rows - t[0]) ** 2 + (cols - t[1]) ** 2
                threshold = ((p - t) ** 2).sum()
                distance[to_target >= threshold] = float('inf')
                if threshold <= 1:
                    distance[radius, radius] = threshold
            row, col = divmod(distance.argmin().item(), distance.shape[-1])
            handles[i] = torch.tensor([float(r1 + row), float(c1 + col)])


def drag_step(unet, vae, clip, context, alphas_cumprod, latent, sup, variant):
    """One drag iteration: DragDiffusion's (`variant` 'drag') or CLIPDrag's ('clipdrag'), Adam step included."""
    import torch
    import torch.nn.functional as F

    t = 681
    a_t, a_prev = alphas_cumprod[t], alphas_cumprod[t - 20]
    motion_radius, tracking_radius, fuse, clip_coefficient = 1, 3, 0.7, 300.0

    def ddim_step(eps, z):  # DragPipeline.step: (x_{t-1}, predicted x0)
        x0 = (z - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
        return a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps, x0

    captured = []
    unet.up_blocks[2].register_forward_hook(lambda module, inputs, output: captured.append(output))

    def unet_features(z):  # forward_unet_features with unet_feature_idx [3]: up_blocks[2]'s output, bilinear to sup
        eps = unet(z, t, encoder_hidden_states=context).sample
        return eps, F.interpolate(captured.pop(), (sup, sup), mode='bilinear')

    z = torch.sin(torch.arange(4 * latent * latent, dtype=torch.float32) * 0.37).reshape(1, 4, latent, latent)
    with torch.no_grad():
        eps0, F0 = unet_features(z)
        x_prev_0, _ = ddim_step(eps0, z)
    z.requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=0.01)
    handles_start = [torch.tensor([sup / 2, sup / 4])]
    targets = [torch.tensor([sup / 2, sup / 4 + 16])]
    text = F.normalize(torch.randn(1, clip.visual_projection.out_features), dim=-1) if clip is not None else None
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).reshape(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).reshape(1, 3, 1, 1)
    calls = [0]

    def global_grad():  # cal_global_grad: CLIP loss of the decoded predicted x0, differentiated w.r.t. a copy of z
        zg = z.detach().requires_grad_(True)
        eps = unet(zg, t, encoder_hidden_states=context).sample
        captured.clear()
        _, x0 = ddim_step(eps, zg)
        image = (vae.decode(x0 / 0.18215).sample / 2 + 0.5).clamp(0, 1)
        image = F.adaptive_avg_pool2d(image, (224, 224)).add(1).div(2)
        embedding = F.normalize(clip((image - mean) / std), dim=-1)
        loss = clip_coefficient * (1 - (embedding @ text.t()).squeeze())
        return torch.autograd.grad(loss, zg)[0]

    def step():
        # Handles restart from the same place every call, so every timed iteration does the same work.
        handles = [h.clone() for h in handles_start]
        handles_init = [h.clone() for h in handles_start]
        eps, F1 = unet_features(z)
        x_prev, _ = ddim_step(eps, z)  # for the mask term, which is off: no mask drawn
        if calls[0] > 0:
            track(F0, F1, handles, handles_init, targets, tracking_radius, fast=variant == 'clipdrag')
        calls[0] += 1
        loss = 0.0
        limit = F1.shape[-1]
        for p, p0, target in zip(handles, handles_init, targets):
            distance = (target - p).norm()
            if distance < 2:
                continue
            d = (target - p) / distance * (min(4, distance) if variant == 'clipdrag' else 1)
            r1, r2, c1, c2 = window(p, motion_radius, limit)
            f1 = feature_patch(F1, r1 + d[0], r2 + d[0], c1 + d[1], c2 + d[1])
            if variant == 'clipdrag':  # the original features at the initial handle
                r1, r2, c1, c2 = window(p0, motion_radius, limit)
                f0 = F0[:, :, r1:r2, c1:c2].detach()
            else:  # the current features at the current handle
                f0 = F1[:, :, r1:r2, c1:c2].detach()
            weight = (2 * motion_radius + 1) ** 2
            loss = loss + (weight * (f0.mean() - f1.mean()) if f1.shape != f0.shape else weight * F.l1_loss(f0, f1))
        extra = {}
        if variant == 'clipdrag':
            started = time.perf_counter()
            g_global = global_grad()  # while the local loss's graph is still alive, as in the official code
            extra['globalGradMs'] = (time.perf_counter() - started) * 1000
            loss.backward()
            g_local = z.grad
            cosine = F.cosine_similarity(g_global.view(1, -1), g_local.view(1, -1))
            sine = (1 - cosine ** 2) ** 0.5
            z.grad = g_local + fuse * (sine if cosine >= 0 else cosine) * g_global
        else:
            loss.backward()
        if not torch.isfinite(z.grad).all():
            raise SystemExit(f'{variant} iteration: the gradient is not finite')
        optimizer.step()
        optimizer.zero_grad()
        del x_prev
        return extra

    return step


def lora_step(unet, vae, context, alphas_cumprod, size):
    """One LoRA training step of `train_lora`: rank-16 LoRA on to_q/to_k/to_v/to_out.0 of every attention, batch
    of 4 copies of the image VAE-encoded (a posterior sample), DDPM noise at random timesteps, ε-MSE, AdamW."""
    import torch
    import torch.nn.functional as F
    from diffusers.models.lora import LoRALinearLayer

    params = []
    for name in unet.attn_processors:
        module = unet
        for part in name.split('.')[:-1]:
            module = getattr(module, part)
        for linear in (module.to_q, module.to_k, module.to_v, module.to_out[0]):
            linear.set_lora_layer(LoRALinearLayer(linear.in_features, linear.out_features, rank=16))
            params.extend(linear.lora_layer.parameters())
    optimizer = torch.optim.AdamW(params, lr=5e-4, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    batch = 4
    text = context.repeat(batch, 1, 1)
    # Resize(size) + RandomCrop(size) of a size×size image is the image itself; ToTensor + Normalize(0.5, 0.5).
    image = torch.rand(1, 3, size, size) * 2 - 1

    def step():
        # The official loop calls unet.train(); SD-1.5's UNet has no dropout or batch statistics, so eval mode
        # computes the same (and this PyTorch 1.13 build returns NaN from the train-mode forward).
        started = time.perf_counter()
        latents = vae.encode(torch.cat([image] * batch)).latent_dist.sample() * vae.config.scaling_factor
        encode_ms = (time.perf_counter() - started) * 1000
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, 1000, (batch,)).long()
        a = alphas_cumprod[timesteps].reshape(batch, 1, 1, 1)
        noisy = a ** 0.5 * latents + (1 - a) ** 0.5 * noise  # DDPMScheduler.add_noise
        prediction = unet(noisy, timesteps, text).sample
        loss = F.mse_loss(prediction.float(), noise.float(), reduction='mean')
        loss.backward()
        if not torch.isfinite(loss):
            raise SystemExit('LoRA step: the loss is not finite')
        optimizer.step()
        optimizer.zero_grad()
        return {'vaeEncodeMs': encode_ms}

    return step

if __name__ == '__main__':
    main()
