/**
 * The compiled graphs of one edit: compiles each engine graph once (keyed by its serialised hash, so
 * rebuilding an identical graph costs nothing), runs them with a cancellation check around every run,
 * records which execution provider ran them, and releases them all at the end.
 */
import type { TypedArray } from '../../engine/dtype';
import type { Graph } from '../../engine/graph';
import { serializeGraph } from '../../engine/onnx/serialize';
import type { CompiledGraph, Engine } from '../../engine/runtime/engine';
import type { DevicePreference } from '../../engine/runtime/providers';
import type { CompileOptions, Feeds } from '../../engine/runtime/types';
import { throwIfCancelled } from '../edit/cancellation';
import type { CompiledGraphCache } from '../edit/edit-session';

export interface GraphSessionOptions {
  readonly device?: DevicePreference;
  readonly signal?: AbortSignal;
  /** Called after each compile (label, milliseconds spent creating the session, provider). */
  readonly onCompile?: (info: { label: string; ms: number; provider: string; cached: boolean }) => void;
  /** Keep compiled graphs here for later edits (an `EditSession`'s) instead of releasing them in `dispose()`. */
  readonly cache?: CompiledGraphCache;
}

/** Per-graph session settings a pipeline stage chooses (e.g. no memory pattern for gradient graphs). */
export type GraphMemoryOptions = Pick<CompileOptions, 'enableMemPattern' | 'enableCpuMemArena'>;

export class GraphSession {
  private readonly compiled = new Map<string, Promise<CompiledGraph>>();
  private providerName: string | null = null;
  private providerWhy = '';

  constructor(
    readonly engine: Engine,
    private readonly options: GraphSessionOptions = {},
  ) {}

  /** The execution provider the graphs run on (null before the first compile). */
  get provider(): string | null {
    return this.providerName;
  }

  get providerReason(): string {
    return this.providerWhy;
  }

  /** Compiles `graph` (or returns the session of an identical graph compiled before with the same options). */
  async compile(graph: Graph, label: string, memory: GraphMemoryOptions = {}): Promise<CompiledGraph> {
    throwIfCancelled(this.options.signal, `compiling ${label}`);
    const model = serializeGraph(graph);
    const device = this.options.device ?? 'auto';
    const shared = this.options.cache;
    const key = `${model.hash}:${memory.enableMemPattern ?? true}:${memory.enableCpuMemArena ?? true}`;
    const sharedKey = `${device}:${key}`;
    let pending = shared?.get(sharedKey) ?? this.compiled.get(key);
    if (!pending) {
      pending = this.engine.compile(model, { label, device, ...memory }).then((compiled) => {
        this.options.onCompile?.({ label, ms: compiled.createMs, provider: compiled.provider, cached: compiled.optimizedModelCache === 'hit' });
        return compiled;
      });
      if (shared) {
        shared.set(sharedKey, pending);
      } else {
        this.compiled.set(key, pending);
        pending.catch(() => this.compiled.delete(key));
      }
    }
    const compiled = await pending;
    this.providerName ??= compiled.provider;
    if (!this.providerWhy) this.providerWhy = compiled.providerReason;
    return compiled;
  }

  /** Runs a compiled graph; throws `EditCancelledError` if the edit was cancelled before or during the run. */
  async run(graph: CompiledGraph, feeds: Feeds, outputs?: readonly string[], stage?: string): Promise<Record<string, TypedArray>> {
    throwIfCancelled(this.options.signal, stage);
    const result = await this.engine.run(graph, feeds, outputs);
    throwIfCancelled(this.options.signal, stage);
    return result;
  }

  /** Releases every graph this session compiled (with a shared cache: the cached graphs this edit did not use). */
  async dispose(): Promise<void> {
    await this.options.cache?.sweep(this.engine);
    const all = [...this.compiled.values()];
    this.compiled.clear();
    for (const pending of all) {
      const graph = await pending.catch(() => null);
      if (graph) await this.engine.release(graph);
    }
  }
}

/** A float32 output by name, failing clearly when a graph did not produce it. */
export function float32Output(outputs: Record<string, TypedArray>, name: string): Float32Array {
  const value = outputs[name];
  if (!(value instanceof Float32Array)) throw new Error(`the graph produced no float32 output "${name}"`);
  return value;
}
