/** Tensor lists of transformers CLIP checkpoints for a config, in their key names (for random weights). */
import type { ClipModelConfig, ClipTextConfig, ClipVisionConfig } from '../../../../src/sidecar/models/config';
import type { TensorSpec } from '../../../support/random-checkpoint';

function linear(name: string, out: number, inFeatures: number, bias = true): TensorSpec[] {
  const weight: TensorSpec = { name: `${name}.weight`, shape: [out, inFeatures], init: 'weight' };
  return bias ? [weight, { name: `${name}.bias`, shape: [out], init: 'bias' }] : [weight];
}

function layerNorm(name: string, d: number): TensorSpec[] {
  return [
    { name: `${name}.weight`, shape: [d], init: 'norm' },
    { name: `${name}.bias`, shape: [d], init: 'bias' },
  ];
}

function encoder(prefix: string, d: number, mlp: number, layers: number): TensorSpec[] {
  return Array.from({ length: layers }, (_, i) => {
    const p = `${prefix}.encoder.layers.${i}`;
    return [
      ...['q_proj', 'k_proj', 'v_proj', 'out_proj'].flatMap((n) => linear(`${p}.self_attn.${n}`, d, d)),
      ...layerNorm(`${p}.layer_norm1`, d),
      ...linear(`${p}.mlp.fc1`, mlp, d),
      ...linear(`${p}.mlp.fc2`, d, mlp),
      ...layerNorm(`${p}.layer_norm2`, d),
    ];
  }).flat();
}

export function clipTextSpecs(c: ClipTextConfig): TensorSpec[] {
  return [
    { name: 'text_model.embeddings.token_embedding.weight', shape: [c.vocabSize, c.hiddenSize], init: 'weight' },
    { name: 'text_model.embeddings.position_embedding.weight', shape: [c.maxPositionEmbeddings, c.hiddenSize], init: 'bias' },
    ...encoder('text_model', c.hiddenSize, c.intermediateSize, c.numHiddenLayers),
    ...layerNorm('text_model.final_layer_norm', c.hiddenSize),
  ];
}

export function clipVisionSpecs(c: ClipVisionConfig): TensorSpec[] {
  const positions = (c.imageSize / c.patchSize) ** 2 + 1;
  return [
    { name: 'vision_model.embeddings.patch_embedding.weight', shape: [c.hiddenSize, c.numChannels, c.patchSize, c.patchSize], init: 'weight' },
    { name: 'vision_model.embeddings.class_embedding', shape: [c.hiddenSize], init: 'bias' },
    { name: 'vision_model.embeddings.position_embedding.weight', shape: [positions, c.hiddenSize], init: 'bias' },
    ...layerNorm('vision_model.pre_layrnorm', c.hiddenSize),
    ...encoder('vision_model', c.hiddenSize, c.intermediateSize, c.numHiddenLayers),
    ...layerNorm('vision_model.post_layernorm', c.hiddenSize),
  ];
}

export function clipModelSpecs(c: ClipModelConfig): TensorSpec[] {
  return [
    ...clipTextSpecs(c.textConfig),
    ...clipVisionSpecs(c.visionConfig),
    ...linear('text_projection', c.projectionDim, c.textConfig.hiddenSize, false),
    ...linear('visual_projection', c.projectionDim, c.visionConfig.hiddenSize, false),
  ];
}
