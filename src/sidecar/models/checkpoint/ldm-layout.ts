/**
 * Single-file Stable Diffusion 1.5 checkpoints in the original (LDM) layout, as shared on model sites: one
 * safetensors file with the UNet under `model.diffusion_model.`, the VAE under `first_stage_model.` and the CLIP
 * text encoder under `cond_stage_model.transformer.`. This maps every tensor to its diffusers name and shape, the
 * way diffusers' single-file loading converts such a file (checked against diffusers' own conversion of a tiny
 * checkpoint, test/fixtures/single-file/). Nothing is copied: a mapped tensor is the same bytes in the same file,
 * at most with the 1×1 conv weights of the VAE attention read as linear weights.
 */
import { ModelLayoutError } from './layout-error';

export type LdmComponent = 'unet' | 'vae' | 'text_encoder';

/** A diffusers tensor in a single-file checkpoint: which tensor of the file, and the shape diffusers gives it. */
export interface MappedTensor {
  readonly source: string;
  readonly shape: readonly number[];
}

export type LdmMapping = Readonly<Record<LdmComponent, ReadonlyMap<string, MappedTensor>>>;

export const LDM_PREFIX: Readonly<Record<LdmComponent, string>> = {
  unet: 'model.diffusion_model.',
  vae: 'first_stage_model.',
  text_encoder: 'cond_stage_model.transformer.',
};

/** Does a file with these tensor names look like an LDM-layout Stable Diffusion checkpoint? */
export function isLdmCheckpoint(names: Iterable<string>): boolean {
  for (const name of names) if (name.startsWith(LDM_PREFIX.unet)) return true;
  return false;
}

const RESNET_PARTS: readonly [string, string][] = [
  ['in_layers.0.', 'norm1.'],
  ['in_layers.2.', 'conv1.'],
  ['emb_layers.1.', 'time_emb_proj.'],
  ['out_layers.0.', 'norm2.'],
  ['out_layers.3.', 'conv2.'],
  ['skip_connection.', 'conv_shortcut.'],
];

function renameResnet(rest: string): string {
  for (const [from, to] of RESNET_PARTS) if (rest.startsWith(from)) return to + rest.slice(from.length);
  return rest;
}

/** `input_blocks.<i>.<j>.rest` etc. → [i, j, rest]. */
function blockParts(key: string, prefix: string): [number, number, string] | undefined {
  const match = new RegExp(`^${prefix.replace(/\./g, '\\.')}(\\d+)\\.(\\d+)\\.(.+)$`).exec(key);
  return match ? [Number(match[1]), Number(match[2]), match[3]!] : undefined;
}

/**
 * UNet names. Layers per block come from the first downsampler (`input_blocks.<L+1>.0.op`), as the block layout of
 * the original code places one after the L layers of each down block but the last.
 */
function unetName(key: string, layers: number): string | undefined {
  const top: Record<string, string> = {
    'time_embed.0.': 'time_embedding.linear_1.',
    'time_embed.2.': 'time_embedding.linear_2.',
    'input_blocks.0.0.': 'conv_in.',
    'out.0.': 'conv_norm_out.',
    'out.2.': 'conv_out.',
  };
  for (const [from, to] of Object.entries(top)) if (key.startsWith(from)) return to + key.slice(from.length);
  const input = blockParts(key, 'input_blocks.');
  if (input) {
    const [i, j, rest] = input;
    const block = Math.floor((i - 1) / (layers + 1));
    const layer = (i - 1) % (layers + 1);
    if (layer === layers) return rest.startsWith('op.') ? `down_blocks.${block}.downsamplers.0.conv.${rest.slice(3)}` : undefined;
    return j === 0 ? `down_blocks.${block}.resnets.${layer}.${renameResnet(rest)}` : `down_blocks.${block}.attentions.${layer}.${rest}`;
  }
  const middle = /^middle_block\.(\d+)\.(.+)$/.exec(key);
  if (middle) {
    const [index, rest] = [Number(middle[1]), middle[2]!];
    return index === 1 ? `mid_block.attentions.0.${rest}` : `mid_block.resnets.${index / 2}.${renameResnet(rest)}`;
  }
  const output = blockParts(key, 'output_blocks.');
  if (output) {
    const [i, j, rest] = output;
    const block = Math.floor(i / (layers + 1));
    const layer = i % (layers + 1);
    if (j === 0) return `up_blocks.${block}.resnets.${layer}.${renameResnet(rest)}`;
    // The upsampler follows the resnet (blocks without attention) or the attention: the only part named conv.*.
    if (rest.startsWith('conv.')) return `up_blocks.${block}.upsamplers.0.${rest}`;
    return j === 1 ? `up_blocks.${block}.attentions.${layer}.${rest}` : undefined;
  }
  return undefined;
}

const VAE_ATTENTION_PARTS: Readonly<Record<string, string>> = { norm: 'group_norm', q: 'to_q', k: 'to_k', v: 'to_v', proj_out: 'to_out.0' };

/** VAE names; the decoder's up blocks run in the opposite order in diffusers. */
function vaeName(key: string, decoderBlocks: number): string | undefined {
  const plain = /^(quant_conv|post_quant_conv|(?:encoder|decoder)\.(?:conv_in|conv_out))\.(weight|bias)$/.exec(key);
  if (plain) return key;
  const norm = /^(encoder|decoder)\.norm_out\.(.+)$/.exec(key);
  if (norm) return `${norm[1]}.conv_norm_out.${norm[2]}`;
  const down = /^encoder\.down\.(\d+)\.(?:block\.(\d+)\.(.+)|downsample\.conv\.(.+))$/.exec(key);
  if (down) {
    return down[2] !== undefined ? `encoder.down_blocks.${down[1]}.resnets.${down[2]}.${down[3]!.replace(/^nin_shortcut\./, 'conv_shortcut.')}` : `encoder.down_blocks.${down[1]}.downsamplers.0.conv.${down[4]}`;
  }
  const up = /^decoder\.up\.(\d+)\.(?:block\.(\d+)\.(.+)|upsample\.conv\.(.+))$/.exec(key);
  if (up) {
    const block = decoderBlocks - 1 - Number(up[1]);
    return up[2] !== undefined ? `decoder.up_blocks.${block}.resnets.${up[2]}.${up[3]!.replace(/^nin_shortcut\./, 'conv_shortcut.')}` : `decoder.up_blocks.${block}.upsamplers.0.conv.${up[4]}`;
  }
  const mid = /^(encoder|decoder)\.mid\.(?:block_(\d)\.(.+)|attn_1\.(norm|q|k|v|proj_out)\.(.+))$/.exec(key);
  if (mid) {
    if (mid[2] !== undefined) return `${mid[1]}.mid_block.resnets.${Number(mid[2]) - 1}.${mid[3]!.replace(/^nin_shortcut\./, 'conv_shortcut.')}`;
    return `${mid[1]}.mid_block.attentions.0.${VAE_ATTENTION_PARTS[mid[4]!]}.${mid[5]}`;
  }
  return undefined;
}

/**
 * Maps every UNet, VAE and text-encoder tensor of an LDM-layout checkpoint to its diffusers name. Other tensors
 * (the DDPM buffers, EMA copies, a second-stage model) are left out, as diffusers leaves them. Throws a
 * ModelLayoutError naming the file when a component is missing or a tensor has no diffusers counterpart.
 */
export function mapLdmCheckpoint(file: string, tensors: ReadonlyMap<string, readonly number[]>): LdmMapping {
  const parts: Record<LdmComponent, Map<string, readonly number[]>> = { unet: new Map(), vae: new Map(), text_encoder: new Map() };
  for (const [name, shape] of tensors) {
    for (const component of Object.keys(LDM_PREFIX) as LdmComponent[]) {
      if (name.startsWith(LDM_PREFIX[component])) parts[component].set(name.slice(LDM_PREFIX[component].length), shape);
    }
  }
  for (const component of Object.keys(parts) as LdmComponent[]) {
    if (parts[component].size === 0) {
      throw new ModelLayoutError(file, `has no ${component === 'text_encoder' ? 'CLIP text encoder' : component.toUpperCase()} tensors (${LDM_PREFIX[component]}*): not a complete Stable Diffusion 1.5 checkpoint in the original layout`);
    }
  }

  const firstDownsampler = [...parts.unet.keys()].map((k) => /^input_blocks\.(\d+)\.0\.op\.weight$/.exec(k)).find((m) => m !== null);
  if (!firstDownsampler) throw new ModelLayoutError(file, 'has no UNet downsampler (model.diffusion_model.input_blocks.<n>.0.op.weight): not a Stable Diffusion 1.5 UNet');
  const layers = Number(firstDownsampler[1]) - 1;
  const decoderBlocks = new Set([...parts.vae.keys()].map((k) => /^decoder\.up\.(\d+)\./.exec(k)?.[1]).filter((i) => i !== undefined)).size;

  const map = (component: LdmComponent, rename: (key: string) => string | undefined): Map<string, MappedTensor> => {
    const out = new Map<string, MappedTensor>();
    for (const [key, shape] of parts[component]) {
      const name = rename(key);
      if (name === undefined) throw new ModelLayoutError(file, `${LDM_PREFIX[component]}${key} has no counterpart in the diffusers ${component} (not a Stable Diffusion 1.5 checkpoint?)`);
      // The VAE attention's 1×1 convolutions are linear layers in diffusers: same values, shape [out, in].
      const linear = component === 'vae' && /mid_block\.attentions\.0\.to_(?:q|k|v|out\.0)\.weight$/.test(name) && shape.length === 4;
      out.set(name, { source: LDM_PREFIX[component] + key, shape: linear ? shape.slice(0, 2) : shape });
    }
    return out;
  };
  return { unet: map('unet', (k) => unetName(k, layers)), vae: map('vae', (k) => vaeName(k, decoderBlocks)), text_encoder: map('text_encoder', (k) => k) };
}
