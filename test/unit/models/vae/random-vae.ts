/** The tensor list of an AutoencoderKL checkpoint for a config, in diffusers' key names (for random weights). */
import type { AutoencoderKLConfig } from '../../../../src/sidecar/models/config';
import type { TensorSpec } from '../../../support/random-checkpoint';

function conv(name: string, out: number, inChannels: number, k: number): TensorSpec[] {
  return [
    { name: `${name}.weight`, shape: [out, inChannels, k, k], init: 'weight' },
    { name: `${name}.bias`, shape: [out], init: 'bias' },
  ];
}

function norm(name: string, c: number): TensorSpec[] {
  return [
    { name: `${name}.weight`, shape: [c], init: 'norm' },
    { name: `${name}.bias`, shape: [c], init: 'bias' },
  ];
}

function linear(name: string, out: number, inFeatures: number): TensorSpec[] {
  return [
    { name: `${name}.weight`, shape: [out, inFeatures], init: 'weight' },
    { name: `${name}.bias`, shape: [out], init: 'bias' },
  ];
}

function resnet(name: string, inChannels: number, out: number): TensorSpec[] {
  return [
    ...norm(`${name}.norm1`, inChannels),
    ...conv(`${name}.conv1`, out, inChannels, 3),
    ...norm(`${name}.norm2`, out),
    ...conv(`${name}.conv2`, out, out, 3),
    ...(inChannels === out ? [] : conv(`${name}.conv_shortcut`, out, inChannels, 1)),
  ];
}

function midBlock(name: string, c: number, attention: boolean): TensorSpec[] {
  const attn = attention
    ? [
        ...norm(`${name}.attentions.0.group_norm`, c),
        ...['to_q', 'to_k', 'to_v', 'to_out.0'].flatMap((p) => linear(`${name}.attentions.0.${p}`, c, c)),
      ]
    : [];
  return [...resnet(`${name}.resnets.0`, c, c), ...attn, ...resnet(`${name}.resnets.1`, c, c)];
}

export function vaeCheckpointSpecs(config: AutoencoderKLConfig): TensorSpec[] {
  const ch = config.blockOutChannels;
  const last = ch[ch.length - 1]!;
  const latent2 = 2 * config.latentChannels;
  const specs: TensorSpec[] = [...conv('encoder.conv_in', ch[0]!, config.inChannels, 3)];
  ch.forEach((out, i) => {
    let inChannels = i === 0 ? ch[0]! : ch[i - 1]!;
    for (let j = 0; j < config.layersPerBlock; j++) {
      specs.push(...resnet(`encoder.down_blocks.${i}.resnets.${j}`, inChannels, out));
      inChannels = out;
    }
    if (i < ch.length - 1) specs.push(...conv(`encoder.down_blocks.${i}.downsamplers.0.conv`, out, out, 3));
  });
  specs.push(
    ...midBlock('encoder.mid_block', last, config.midBlockAddAttention),
    ...norm('encoder.conv_norm_out', last),
    ...conv('encoder.conv_out', latent2, last, 3),
    ...conv('quant_conv', latent2, latent2, 1),
    ...conv('post_quant_conv', config.latentChannels, config.latentChannels, 1),
    ...conv('decoder.conv_in', last, config.latentChannels, 3),
    ...midBlock('decoder.mid_block', last, config.midBlockAddAttention),
  );
  const reversed = [...ch].reverse();
  reversed.forEach((out, i) => {
    let inChannels = i === 0 ? reversed[0]! : reversed[i - 1]!;
    for (let j = 0; j < config.layersPerBlock + 1; j++) {
      specs.push(...resnet(`decoder.up_blocks.${i}.resnets.${j}`, inChannels, out));
      inChannels = out;
    }
    if (i < reversed.length - 1) specs.push(...conv(`decoder.up_blocks.${i}.upsamplers.0.conv`, out, out, 3));
  });
  specs.push(...norm('decoder.conv_norm_out', ch[0]!), ...conv('decoder.conv_out', config.outChannels, ch[0]!, 3));
  return specs;
}
