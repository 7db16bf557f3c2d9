"""Export a diffusers UNet folder to ONNX with PyTorch's own exporter (torch.onnx.export), for comparing
onnxruntime's speed on that graph with the one our engine builds (`npm run bench -- unet --reference FILE`).

    python3 bench/pytorch-reference/export_unet.py --model .cache/bench-models/unet-quarter [--latent 32]
        [--attention-scores baddbmm|matmul] [--out FILE]

Inputs and output carry the names of our UNet graph (sample [1,4,N,N], timestep [] float32,
encoder_hidden_states [1,77,cross_attention_dim] -> eps), static shapes, opset 17. See README.md here.
"""

import argparse
import importlib.machinery
import json
import os
import sys
import types


def stub_missing_hub_modules():
    """diffusers imports huggingface_hub and safetensors at module level for hub downloads and file loading,
    neither of which the export uses. Where they are not installed, empty stand-ins satisfy the imports."""

    def placeholder(attr):
        if attr.startswith('__'):
            raise AttributeError(attr)
        # Any other name imported from a stand-in is a placeholder class (it may be used as an exception type).
        return type(attr, (Exception,), {})

    def stub(name, **attributes):
        package = name.partition('.')[0]
        if package not in sys.modules:
            try:
                __import__(package)
                return
            except ImportError:
                pass
        elif not getattr(sys.modules[package], '_stand_in', False):
            return
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        module.__dict__.update(attributes, _stand_in=True, __getattr__=placeholder)
        if '.' not in name:
            module.__path__ = []
        sys.modules[name] = module
        parent, _, child = name.rpartition('.')
        if parent:
            setattr(sys.modules[parent], child, module)

    cache = os.path.join(os.path.expanduser('~'), '.cache', 'huggingface')
    stub('huggingface_hub', __version__='0.0.0')
    stub('huggingface_hub.constants', HUGGINGFACE_HUB_CACHE=os.path.join(cache, 'hub'), hf_cache_home=cache)
    stub('huggingface_hub.file_download', REGEX_COMMIT_HASH=__import__('re').compile(r'^[0-9a-f]{40}$'))
    stub('huggingface_hub.utils', is_jinja_available=lambda: False)
    stub('safetensors')
    stub('safetensors.torch')


def read_safetensors(path):
    """The tensors of a .safetensors file: an 8-byte little-endian header length, a JSON header, raw data."""
    import numpy as np

    dtypes = {'F32': np.float32, 'F16': np.float16, 'F64': np.float64, 'I64': np.int64, 'I32': np.int32}
    with open(path, 'rb') as f:
        header_len = int.from_bytes(f.read(8), 'little')
        header = json.loads(f.read(header_len))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == '__metadata__':
            continue
        if entry['dtype'] not in dtypes:
            raise SystemExit(f'{path}: tensor {name} has dtype {entry["dtype"]}, which this script does not read')
        start, end = entry['data_offsets']
        array = np.frombuffer(data[start:end], dtype=dtypes[entry['dtype']]).reshape(entry['shape'])
        tensors[name] = array.astype(np.float32) if array.dtype.kind == 'f' else array
    return tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', required=True, help='diffusers UNet folder (config.json + diffusion_pytorch_model.safetensors)')
    parser.add_argument('--latent', type=int, default=32, help='latent height and width (default 32)')
    parser.add_argument('--tokens', type=int, default=77, help='text tokens (default 77)')
    parser.add_argument(
        '--attention-scores', choices=['baddbmm', 'matmul'], default='baddbmm',
        help='baddbmm: diffusers as it runs on PyTorch < 2 (the default); matmul: scores as softmax(scale · q @ kᵀ), '
        'the pattern PyTorch 2 exports for scaled_dot_product_attention, without baddbmm\'s zero-weighted Add',
    )
    parser.add_argument('--out', help='ONNX file to write (default .cache/bench-models/pytorch-reference/<model folder>@<latent>.onnx)')
    args = parser.parse_args()

    stub_missing_hub_modules()
    try:
        import torch
        from diffusers.models.unet_2d_condition import UNet2DConditionModel
    except ImportError as error:
        raise SystemExit(f'{error}: needs PyTorch (e.g. Debian python3-torch) and a diffusers release source on PYTHONPATH; see README.md')

    if args.attention_scores == 'matmul':
        from diffusers.models.attention_processor import Attention

        def matmul_scores(self, query, key, attention_mask=None):
            if attention_mask is not None:
                raise ValueError('--attention-scores matmul: the UNet forward has no attention mask')
            return (torch.matmul(query, key.transpose(-1, -2)) * self.scale).softmax(dim=-1)

        Attention.get_attention_scores = matmul_scores

    with open(os.path.join(args.model, 'config.json')) as f:
        config = {k: v for k, v in json.load(f).items() if not k.startswith('_')}
    unet = UNet2DConditionModel(**config).eval()
    weights = read_safetensors(os.path.join(args.model, 'diffusion_pytorch_model.safetensors'))
    state = {name: torch.from_numpy(array.copy()) for name, array in weights.items()}
    missing, unexpected = unet.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SystemExit(f'weights do not match the config: missing {missing[:5]}…, unexpected {unexpected[:5]}…')

    class Eps(torch.nn.Module):
        def __init__(self, unet):
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, encoder_hidden_states):
            return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]

    n = args.latent
    inputs = (
        torch.randn(1, config.get('in_channels', 4), n, n),
        torch.tensor(500.0),
        torch.randn(1, args.tokens, config['cross_attention_dim']),
    )
    out = args.out or os.path.join('.cache', 'bench-models', 'pytorch-reference', f'{os.path.basename(os.path.normpath(args.model))}@{n}{"-matmul" if args.attention_scores == "matmul" else ""}.onnx')
    os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            Eps(unet), inputs, out, opset_version=17, do_constant_folding=True,
            input_names=['sample', 'timestep', 'encoder_hidden_states'], output_names=['eps'],
        )
    print(f'wrote {out} (torch {torch.__version__}, opset 17, latent {n}×{n}, attention scores by {args.attention_scores})')


if __name__ == '__main__':
    main()
