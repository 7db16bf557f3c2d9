/** What every UNet building function needs besides its own input: weights, settings and shared values. */
import type { Graph, Value } from '../../engine/graph';
import type { ScopedWeights } from '../weights';
import type { TokenRows } from './attention';
import type { LoraInputs } from './lora';
import type { UNetPlan } from './plan';

export interface UNetBuildContext {
  readonly graph: Graph;
  readonly w: ScopedWeights;
  readonly plan: UNetPlan;
  /** GroupNorm groups and epsilon of the resnets and the output norm. */
  readonly groups: number;
  readonly normEps: number;
  /** SiLU of the time embedding, [rows, timeEmbedDim]; every resnet projects it (computed once). */
  readonly timeAct: Value;
  /** encoder_hidden_states as token rows [B·tokens, crossAttentionDim], the cross-attention context. */
  readonly encoderHiddenStates: TokenRows;
  readonly lora: LoraInputs | null;
  /** Transformer blocks with this execution index or later use mutual self-attention; null: none do. */
  readonly mutualFromBlock: number | null;
  /** Largest attention score tensor computed at once (bytes); 0 disables query chunking. */
  readonly attentionChunkBytes: number;
  /** Counts BasicTransformerBlocks as they are built, giving each its execution index. */
  readonly counter: { next: number };
}
