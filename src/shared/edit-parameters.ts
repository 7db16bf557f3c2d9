// The tunable parameters of one edit: their defaults (the official CLIPDrag code's UI defaults), their ranges and
// where each default comes from. Shared by the editor (forms, settings) and the pipeline; no Node- or DOM-only code.

export const EDIT_MODES = ['clipdrag', 'drag', 'freedrag', 'text'] as const;
/**
 * The kind of edit, each run by the same machinery (LoRA, inversion, latent optimisation at t*, mutual
 * self-attention denoising):
 * - `clipdrag`: drag points plus CLIP text guidance fused by GLMS (CLIPDrag);
 * - `drag`: drag points only, as DragDiffusion does it (no CLIP term, `editPrompt` unused);
 * - `freedrag`: drag points only, as FreeDrag's diffusion code does it (adaptive template, line search, no point tracking);
 * - `text`: no points; the CLIP gradient of the edit prompt plus the mask term (text-based editing).
 */
export type EditMode = (typeof EDIT_MODES)[number];

/** Each mode by the name of the method it runs, for lists where the mode's id alone says little (results, batch). */
export const EDIT_MODE_NAMES: Readonly<Record<EditMode, string>> = {
  clipdrag: 'CLIPDrag',
  drag: 'DragDiffusion',
  freedrag: 'FreeDrag',
  text: 'Text only',
};

export function isEditMode(value: unknown): value is EditMode {
  return typeof value === 'string' && (EDIT_MODES as readonly string[]).includes(value);
}

export const FUSION_RULES = ['official', 'projection'] as const;
/**
 * How the drag gradient G_l and the CLIP gradient G_g are fused. `official` (default): the rule the official
 * CLIPDrag code implements (G_l + λ·s·G_g when cos ≥ 0, G_l + λ·c·G_g otherwise). `projection`: an
 * interpretation of the paper's prose (G_g split into its parts perpendicular and parallel to G_l); the paper's
 * typeset equation was not available to check it against.
 */
export type FusionRule = (typeof FUSION_RULES)[number];

export interface EditParameters {
  /** DDIM steps of the full schedule (`n_inference_step`). */
  inferenceSteps: number;
  /** Fraction of the schedule the image is inverted to: round(strength × steps) inversion steps. */
  inversionStrength: number;
  /** Maximum drag (latent optimisation) iterations (`n_pix_step`). */
  dragSteps: number;
  /** Adam learning rate of the latent (`latent_lr`). */
  latentLearningRate: number;
  /** Motion-supervision patch radius r_m, in supervision-grid pixels. */
  motionRadius: number;
  /** Point-tracking search radius r_p, in supervision-grid pixels. */
  trackingRadius: number;
  /** Weight λ_mask (`lam`) of the term that keeps the region outside the mask unchanged. */
  maskWeight: number;
  /** Fusion coefficient λ (`fuse_cof`) of the global CLIP gradient. */
  fusionWeight: number;
  fusionRule: FusionRule;
  /** Scale of the CLIP loss (`clip_loss_coef`). */
  clipGuidanceWeight: number;
  loraRank: number;
  /** LoRA fine-tuning steps on the source image; 0 disables LoRA. */
  loraSteps: number;
  loraLearningRate: number;
  loraBatchSize: number;
  /** First denoising step with mutual self-attention (MasaCtrl `start_step`). */
  masaStartStep: number;
  /** First transformer block (in execution order, 0–15 in SD 1.5) with mutual self-attention (`start_layer`). */
  masaStartLayer: number;
  /** FreeDrag's expected initial loss of each dragging stage (`l_expected`). */
  freedragExpectedLoss: number;
  /** FreeDrag's largest motion of the template per stage, in supervision pixels (`d_max`). */
  freedragMaxDistance: number;
  /** Random seed of the edit. */
  seed: number;
  /** Send a preview image every this many drag iterations; 0 sends none. */
  previewInterval: number;
}

export type EditParameterName = keyof EditParameters;

interface ParameterInfo {
  /** One line for forms and error messages. */
  description: string;
  /** Where the default comes from (reference code, or a project choice). */
  source: string;
}

export interface NumericParameterDefinition extends ParameterInfo {
  kind: 'integer' | 'number';
  default: number;
  min: number;
  /** `min` itself is not allowed (e.g. a learning rate must be > 0). */
  minExclusive?: boolean;
  max: number;
}

export interface EnumParameterDefinition<T extends string = string> extends ParameterInfo {
  kind: 'enum';
  default: T;
  values: readonly T[];
}

export type ParameterDefinition<T> = [T] extends [string] ? EnumParameterDefinition<T> : NumericParameterDefinition;

const HEAD_UI = 'CLIPDrag HEAD UI (drag_ui.py / utils/ui_utils.py)';
const FREEDRAG_UI = 'FreeDrag diffusion UI (FreeDrag--diffusion--version/drag_ui.py, utils/freedrag_utils.py)';
const LORA_UI = 'CLIPDrag and DragDiffusion UI LoRA defaults (drag_ui.py, run_lora_training.py)';

/** Every parameter with its default, range and source. Ranges are what the spec accepts, not tuning advice. */
export const EDIT_PARAMETER_DEFINITIONS: { readonly [K in EditParameterName]: ParameterDefinition<EditParameters[K]> } = {
  inferenceSteps: { kind: 'integer', default: 50, min: 1, max: 1000, description: 'DDIM steps of the full schedule', source: `${HEAD_UI}: n_inference_step = 50` },
  inversionStrength: {
    kind: 'number', default: 0.7, min: 0, minExclusive: true, max: 1,
    description: 'fraction of the schedule the image is inverted to', source: `${HEAD_UI}: inversion strength 0.7 (35 of 50 steps, t* = 681)`,
  },
  dragSteps: {
    kind: 'integer', default: 800, min: 0, max: 10000,
    description: 'maximum drag iterations',
    source: `${HEAD_UI}: n_pix_step = 800 (the author's recommended setting, issue #1); the DragBench script uses 40. Other modes: EDIT_MODE_DEFAULTS (text mode: its iterations)`,
  },
  latentLearningRate: { kind: 'number', default: 0.01, min: 0, minExclusive: true, max: 1, description: 'Adam learning rate of the latent', source: `${HEAD_UI}: latent_lr = 0.01` },
  motionRadius: { kind: 'integer', default: 1, min: 0, max: 32, description: 'motion-supervision patch radius r_m', source: `${HEAD_UI}: r_m = 1 (DragBench script: 4)` },
  trackingRadius: { kind: 'integer', default: 3, min: 1, max: 64, description: 'point-tracking search radius r_p', source: `${HEAD_UI}: r_p = 3 (DragBench script: 12)` },
  maskWeight: { kind: 'number', default: 0.1, min: 0, max: 1000, description: 'weight of the unmasked-region term (lam)', source: `${HEAD_UI}: lam = 0.1` },
  fusionWeight: { kind: 'number', default: 0.7, min: 0, max: 1, description: 'gradient fusion coefficient λ (fuse_cof)', source: `${HEAD_UI}: fuse_cof = 0.7 (DragBench script: 0.3)` },
  fusionRule: {
    kind: 'enum', default: 'official', values: FUSION_RULES,
    description: 'gradient fusion rule: "official" (the official code\'s rule) or "projection" (an interpretation of the paper\'s perpendicular/parallel decomposition)',
    source: 'the rule the official code implements (utils/drag_utils.py); `projection` is a project option interpreting the paper\'s prose',
  },
  clipGuidanceWeight: { kind: 'number', default: 300, min: 0, max: 100000, description: 'scale of the CLIP loss (clip_loss_coef)', source: `${HEAD_UI}: clip_loss_coef = 300` },
  loraRank: { kind: 'integer', default: 16, min: 1, max: 128, description: 'LoRA rank', source: `${LORA_UI}: rank 16` },
  loraSteps: { kind: 'integer', default: 80, min: 0, max: 2000, description: 'LoRA fine-tuning steps (0 disables LoRA)', source: `${LORA_UI}: 80 steps` },
  loraLearningRate: { kind: 'number', default: 5e-4, min: 0, minExclusive: true, max: 1, description: 'LoRA learning rate', source: `${LORA_UI}: lr 5e-4` },
  loraBatchSize: { kind: 'integer', default: 4, min: 1, max: 16, description: 'LoRA batch size (the image repeated)', source: `${LORA_UI}: batch 4` },
  masaStartStep: { kind: 'integer', default: 0, min: 0, max: 1000, description: 'first denoising step with mutual self-attention', source: `${HEAD_UI}: start_step = 0` },
  masaStartLayer: { kind: 'integer', default: 10, min: 0, max: 16, description: 'first transformer block with mutual self-attention', source: `${HEAD_UI}: start_layer = 10` },
  freedragExpectedLoss: {
    kind: 'number', default: 1, min: 0, minExclusive: true, max: 100,
    description: 'FreeDrag: expected initial loss of each dragging stage (l_expected)', source: `${FREEDRAG_UI}: l_expected = 1`,
  },
  freedragMaxDistance: {
    kind: 'number', default: 5, min: 0, minExclusive: true, max: 64,
    description: 'FreeDrag: largest template move per stage, supervision pixels (d_max)', source: `${FREEDRAG_UI}: d_max = 5`,
  },
  seed: { kind: 'integer', default: 42, min: 0, max: 4294967295, description: 'random seed', source: `${HEAD_UI}: seed_everything(42)` },
  previewInterval: { kind: 'integer', default: 10, min: 0, max: 10000, description: 'drag iterations between preview images (0: none)', source: 'project choice (the reference shows no previews)' },
};

export const EDIT_PARAMETER_NAMES = Object.keys(EDIT_PARAMETER_DEFINITIONS) as EditParameterName[];

/** Iterations of `text` mode when none are given (see docs/algorithm.md, "Text mode"). */
export const TEXT_MODE_DEFAULT_STEPS = 100;

/**
 * Where a mode's reference code has other defaults than CLIPDrag's: they replace the defaults above for that mode
 * (a value given in the spec still wins). Each entry says where it comes from in `EDIT_MODE_DEFAULT_SOURCES`.
 */
export const EDIT_MODE_DEFAULTS: { readonly [M in EditMode]: Readonly<Partial<EditParameters>> } = {
  clipdrag: {},
  drag: { dragSteps: 80 },
  freedrag: { dragSteps: 300, motionRadius: 4, maskWeight: 10, loraSteps: 200, loraLearningRate: 2e-4 },
  text: { dragSteps: TEXT_MODE_DEFAULT_STEPS },
};

export const EDIT_MODE_DEFAULT_SOURCES: { readonly [M in EditMode]: string } = {
  clipdrag: HEAD_UI,
  drag: 'DragDiffusion HEAD (drag_ui.py, utils/ui_utils.py): n_pix_step = 80',
  freedrag: `${FREEDRAG_UI}: max_step = 300, win_r = 4 (as r_m), lam = 10, LoRA 200 steps at 2e-4`,
  text: 'project choice: 100 iterations (docs/algorithm.md, "Text mode")',
};

/** The defaults of one mode: CLIPDrag's, with the mode's own where its reference code differs. */
export function defaultParametersFor(mode: EditMode): EditParameters {
  return { ...DEFAULT_EDIT_PARAMETERS, ...EDIT_MODE_DEFAULTS[mode] };
}

function defaultParameters(): EditParameters {
  const values: Record<string, unknown> = {};
  for (const name of EDIT_PARAMETER_NAMES) values[name] = EDIT_PARAMETER_DEFINITIONS[name].default;
  return values as unknown as EditParameters;
}

export const DEFAULT_EDIT_PARAMETERS: Readonly<EditParameters> = Object.freeze(defaultParameters());

/** The range a numeric parameter accepts, in words: "an integer from 1 to 128", "a number > 0 and ≤ 1". */
export function describeRange(definition: NumericParameterDefinition): string {
  const noun = definition.kind === 'integer' ? 'an integer' : 'a number';
  if (definition.minExclusive) return `${noun} > ${definition.min} and ≤ ${definition.max}`;
  return `${noun} from ${definition.min} to ${definition.max}`;
}

/** Number of DDIM inversion steps the reference derives from the strength: round(strength × steps). */
export function inversionStepCount(parameters: Pick<EditParameters, 'inferenceSteps' | 'inversionStrength'>): number {
  // Python's round() rounds half to even; strength × steps is rarely an exact half, but match it anyway.
  const product = parameters.inversionStrength * parameters.inferenceSteps;
  const floor = Math.floor(product);
  const fraction = product - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}
