// Which files of a repo (or folder, or cache snapshot) a model needs. Only safetensors weights are chosen for the
// editing models: pickle formats (.bin, .ckpt) can run code when loaded, and onnx/flax/tf files are for other
// runtimes. The one exception is LPIPS, whose weights are published only as `torch.save` files: those are read by
// the restricted reader of formats/torch-checkpoint.ts, which accepts tensors and plain containers and never runs
// code from a pickle.
import { ModelStoreError } from './errors';

/**
 * `stable-diffusion`: a diffusers StableDiffusionPipeline repo. `clip`: a transformers CLIPModel repo. `lpips`: the
 * LPIPS-AlexNet weights of the evaluation (see `LPIPS_FILES`).
 */
export type ModelKind = 'stable-diffusion' | 'clip' | 'lpips';
export const MODEL_KINDS: readonly ModelKind[] = ['stable-diffusion', 'clip', 'lpips'];

/**
 * The files of an LPIPS-AlexNet model, at the top of the repo or folder: one `lpips-alex.safetensors` (the trunk and
 * the linear layers, as `make-bench-model` writes it), or the published PyTorch files — LPIPS v0.1's linear layers
 * (`alex.pth` in the lpips package, `LPIPS_v0.1_alex-<sha256 prefix>.pth` where pyiqa publishes it) and torchvision's
 * AlexNet (`alexnet-owt-7be5be79.pth`, any `alexnet*.pth`).
 */
export const LPIPS_FILES = {
  safetensors: 'lpips-alex.safetensors',
  linear: /^(alex|LPIPS_v0\.1_alex(-[0-9a-f]+)?)\.pth$/,
  trunk: /^alexnet[^/]*\.pth$/,
} as const;

/** The LPIPS files among `names` (top-level names): the safetensors file, else the two `.pth` files; null if neither. */
export function pickLpipsFiles(names: Iterable<string>): { safetensors: string } | { linear: string; trunk: string } | null {
  const all = [...names].filter((name) => !name.includes('/')).sort();
  if (all.includes(LPIPS_FILES.safetensors)) return { safetensors: LPIPS_FILES.safetensors };
  const linear = all.find((name) => LPIPS_FILES.linear.test(name));
  const trunk = all.find((name) => LPIPS_FILES.trunk.test(name));
  return linear && trunk ? { linear, trunk } : null;
}

export type FilePrecision = 'fp32' | 'fp16';

export interface FileSelection {
  /** Repo-relative paths with `/` separators, in a stable order (configs before weights). */
  files: string[];
  /** FilePrecision of the chosen weight files; `mixed` when some component had to fall back. */
  weightsPrecision: FilePrecision | 'mixed';
  /** Human-readable remarks, e.g. a missing fp16 variant. */
  notes: string[];
}

interface WeightedComponent {
  /** Folder inside the repo ('' for the root). */
  folder: string;
  /** Stem of the weight file: diffusers names it `diffusion_pytorch_model`, transformers `model`. */
  weightsStem: string;
  configFile: string;
}

const SD_WEIGHTED: readonly WeightedComponent[] = [
  { folder: 'unet', weightsStem: 'diffusion_pytorch_model', configFile: 'config.json' },
  { folder: 'vae', weightsStem: 'diffusion_pytorch_model', configFile: 'config.json' },
  { folder: 'text_encoder', weightsStem: 'model', configFile: 'config.json' },
];
const CLIP_WEIGHTED: readonly WeightedComponent[] = [{ folder: '', weightsStem: 'model', configFile: 'config.json' }];

const TOKENIZER_REQUIRED = ['tokenizer/vocab.json', 'tokenizer/merges.txt'];
const TOKENIZER_OPTIONAL = ['tokenizer/tokenizer_config.json', 'tokenizer/special_tokens_map.json'];

/**
 * Picks the files `kind` needs from `available` (all repo-relative file paths). `modelIndex` is the parsed
 * model_index.json of a diffusers repo when known: a tokenizer it lists becomes required.
 * Throws MISSING_FILES naming every missing piece; `where` says which repo/folder for that message.
 */
export function selectModelFiles(
  kind: ModelKind,
  available: Iterable<string>,
  precision: FilePrecision,
  where: string,
  modelIndex?: unknown,
): FileSelection {
  const files = new Set(available);
  const chosen: string[] = [];
  const missing: string[] = [];
  const notes: string[] = [];
  const precisions = new Set<FilePrecision>();

  const requireFile = (file: string): void => {
    if (files.has(file)) chosen.push(file);
    else missing.push(file);
  };

  if (kind === 'lpips') {
    const picked = pickLpipsFiles(files);
    if (!picked) {
      throw new ModelStoreError(
        'MISSING_FILES',
        `${where} has no LPIPS-AlexNet weights: expected ${LPIPS_FILES.safetensors}, or LPIPS v0.1's linear layers (alex.pth, or LPIPS_v0.1_alex-<hash>.pth) ` +
          "with torchvision's AlexNet checkpoint (alexnet-owt-7be5be79.pth) at its top level.",
      );
    }
    const chosen = 'safetensors' in picked ? [picked.safetensors] : [picked.trunk, picked.linear];
    return { files: chosen, weightsPrecision: 'fp32', notes: [] };
  }
  if (kind === 'stable-diffusion') {
    requireFile('model_index.json');
    requireFile('scheduler/scheduler_config.json');
  }
  for (const component of kind === 'stable-diffusion' ? SD_WEIGHTED : CLIP_WEIGHTED) {
    requireFile(join(component.folder, component.configFile));
    const weights = pickWeights(files, component, precision);
    if (weights.kind === 'missing') {
      missing.push(weights.description);
      continue;
    }
    chosen.push(...weights.files);
    precisions.add(weights.precision);
    if (weights.precision !== precision) {
      notes.push(
        `${component.folder || 'model'}: no ${precision} weights in ${where}; using the ${weights.precision} files instead.`,
      );
    }
  }
  if (kind === 'stable-diffusion' && needsTokenizer(files, modelIndex)) {
    TOKENIZER_REQUIRED.forEach(requireFile);
    chosen.push(...TOKENIZER_OPTIONAL.filter((file) => files.has(file)));
  }

  if (missing.length > 0) {
    const pickleOnly = missing.some((entry) => entry.includes('only pickle'));
    throw new ModelStoreError(
      'MISSING_FILES',
      `${where} is missing files a ${kind === 'clip' ? 'CLIP model' : 'Stable Diffusion pipeline'} needs: ${missing.join('; ')}.` +
        (pickleOnly
          ? ' Pickle weights (.bin/.ckpt) are not loaded because they can run code: use a revision or copy of the model with .safetensors files.'
          : ''),
    );
  }
  const weightsPrecision = precisions.size === 1 ? [...precisions][0]! : 'mixed';
  return { files: chosen, weightsPrecision, notes };
}

type WeightsChoice =
  | { kind: 'found'; files: string[]; precision: FilePrecision }
  | { kind: 'missing'; description: string };

function pickWeights(files: ReadonlySet<string>, component: WeightedComponent, precision: FilePrecision): WeightsChoice {
  const order: FilePrecision[] = precision === 'fp16' ? ['fp16', 'fp32'] : ['fp32', 'fp16'];
  for (const candidate of order) {
    const found = weightFilesFor(files, component, candidate);
    if (found) return { kind: 'found', files: found, precision: candidate };
  }
  const base = join(component.folder, component.weightsStem);
  const prefix = component.folder ? `${component.folder}/` : '';
  const pickle = [...files].some((file) => file.startsWith(prefix) && !file.slice(prefix.length).includes('/') && /\.(bin|ckpt|pt|pth)$/.test(file));
  return {
    kind: 'missing',
    description: pickle ? `${base}.safetensors (the repo has only pickle weights)` : `${base}.safetensors`,
  };
}

/** A single file, or an index plus a complete set of shards; undefined when this precision is not available. */
function weightFilesFor(files: ReadonlySet<string>, component: WeightedComponent, precision: FilePrecision): string[] | undefined {
  const base = join(component.folder, component.weightsStem);
  const variant = precision === 'fp16' ? '.fp16' : '';
  const single = `${base}${variant}.safetensors`;
  if (files.has(single)) return [single];

  const index = `${base}.safetensors.index${variant}.json`;
  if (!files.has(index)) return undefined;
  const shardPattern = new RegExp(`^${escapeRegExp(base + variant)}-(\\d+)-of-(\\d+)\\.safetensors$`);
  const shards = [...files].filter((file) => shardPattern.test(file)).sort();
  const total = shards.length > 0 ? Number(shardPattern.exec(shards[0]!)![2]) : 0;
  if (total === 0 || shards.length !== total) return undefined;
  return [index, ...shards];
}

function needsTokenizer(files: ReadonlySet<string>, modelIndex: unknown): boolean {
  if ([...files].some((file) => file.startsWith('tokenizer/'))) return true;
  // model_index.json lists absent components as [null, null].
  const entry = (modelIndex as Record<string, unknown> | null | undefined)?.tokenizer;
  return Array.isArray(entry) && entry.some((part) => part !== null);
}

function join(folder: string, file: string): string {
  return folder ? `${folder}/${file}` : file;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
