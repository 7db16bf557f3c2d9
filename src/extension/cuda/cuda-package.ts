// The package onnxruntime-node's install script takes its CUDA provider libraries from (its install-metadata.js):
// the NuGet package Microsoft.ML.OnnxRuntime.Gpu.Linux of the same version, a zip file whose
// runtimes/linux-x64/native/ folder holds the three libraries. CLIPDrag: Install CUDA Support downloads exactly
// that archive and accepts it only when its SHA-512 matches the one pinned here or, with none pinned, the one NuGet
// publishes for it (nuget-hash.ts).

export interface CudaPackageManifest {
  /** NuGet id and version; the version must be onnxruntime-node's. */
  package: string;
  version: string;
  /**
   * SHA-512 of the whole archive, base64 (as NuGet publishes `packageHash`). null: not pinned for this version; the
   * download is then checked against the published hash, and refused when that cannot be read. Pin one with
   * `node scripts/record-cuda-package-hash.mjs` where the archive can be fetched; a pinned hash must also equal the
   * published one whenever that is known.
   */
  sha512: string | null;
  /** Installed file name → path inside the archive. */
  files: Readonly<Record<string, string>>;
}

export const CUDA_PACKAGE: CudaPackageManifest = {
  package: 'Microsoft.ML.OnnxRuntime.Gpu.Linux',
  version: '1.30.0',
  sha512: null,
  files: {
    'libonnxruntime_providers_shared.so': 'runtimes/linux-x64/native/libonnxruntime_providers_shared.so',
    'libonnxruntime_providers_cuda.so': 'runtimes/linux-x64/native/libonnxruntime_providers_cuda.so',
    'libonnxruntime_providers_tensorrt.so': 'runtimes/linux-x64/native/libonnxruntime_providers_tensorrt.so',
  },
};

/** Where NuGet's flat container serves a package version (the `clipdrag.cuda.packageUrl` default). */
export function defaultCudaPackageUrl(manifest: CudaPackageManifest = CUDA_PACKAGE): string {
  const id = manifest.package.toLowerCase();
  return `https://api.nuget.org/v3-flatcontainer/${id}/${manifest.version}/${id}.${manifest.version}.nupkg`;
}

/** The system libraries the CUDA provider loads (CUDA 12 and cuDNN 9), by what provides them. */
export const CUDA_SYSTEM_LIBRARIES: Readonly<Record<string, readonly string[]>> = {
  'CUDA 12': ['libcudart.so.12', 'libcublas.so.12', 'libcublasLt.so.12', 'libcufft.so.11', 'libcurand.so.10'],
  'cuDNN 9': ['libcudnn.so.9'],
};
