/** The Stable Diffusion VAE (diffusers AutoencoderKL) on the graph engine. */
export {
  assertVaePartBound,
  VAE_DECODER_PREFIXES,
  VAE_ENCODER_PREFIXES,
  vaeDecode,
  vaeDecoderBlockScopes,
  vaeDecodeImage,
  vaeEncode,
  vaeEncodeLatents,
  vaeScaleFactor,
  type VaeModel,
  type VaePosterior,
} from './autoencoder-kl';
