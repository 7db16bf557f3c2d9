/**
 * onnxruntime sessions of compiled graphs, in the thread that owns them (the engine worker; tests and
 * benchmarks may use it in-thread). Identical compiles share one session, counted by handle; the last
 * release disposes it.
 *
 * `run()` of onnxruntime-node blocks the calling thread, and so does session creation: this class is
 * meant to live in a worker (see engine.ts), where the blocking is harmless.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { SerializedModel } from '../onnx/serialize';
import { externalWeightsAsInputs } from '../onnx/weight-inputs';
import { prepareModelFolder, type PreparedModelFolder } from './model-folder';
import { optimizedModelPath, removeStaleOptimizedModels, temporaryOptimizedModelPath } from './optimized-model';
import { collectNodePlacement } from './placement';
import { chooseExecutionProvider, executionProviderOption } from './providers';
import { SharedWeights, type WeightFeeds } from './shared-weights';
import { checkOutputNames, fromOutputTensors, toInputTensors } from './tensors';
import {
  resolveCompileOptions,
  type CompileOptions,
  type CompiledGraphInfo,
  type ExternalWeightsReport,
  type Feeds,
  type GraphOptimizationLevel,
  type NodePlacement,
  type OptimizedModelCacheState,
  type Outputs,
  type ResidentWeights,
  type ResolvedCompileOptions,
  type TensorInfo,
} from './types';

export function defaultCacheDir(): string {
  return path.join(os.tmpdir(), 'clipdrag-sessions');
}

/** Session creation failed on the chosen provider; the message says which, why, and what to do. */
export class SessionCreationError extends Error {
  constructor(
    readonly provider: string,
    message: string,
  ) {
    super(message);
    this.name = 'SessionCreationError';
  }
}

export class GraphRunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GraphRunError';
  }
}

export interface RunResult {
  readonly outputs: Outputs;
  /** Present on the run that measured it (the first run of a graph compiled with `reportNodePlacement`). */
  readonly nodePlacement?: NodePlacement;
}

interface LiveSession {
  readonly key: string;
  /** The checkpoint files it reads, by real path. */
  readonly checkpoints: readonly { readonly realPath: string; readonly mode: ResidentWeights['mode']; readonly bytes: number }[];
  /** The weights the engine feeds it (`shared`), held in `SessionStore.sharedWeights`. */
  readonly weightFeeds: WeightFeeds | undefined;
  readonly session: ort.InferenceSession;
  readonly info: CompiledGraphInfo;
  readonly handles: Set<number>;
  /** Profiling is on until the first run, which reads the placement from the profile. */
  profilePrefix: string | undefined;
  nodePlacement: NodePlacement | undefined;
}

let profileCounter = 0;

export interface SessionStoreOptions {
  /**
   * How many bytes of weights onnxruntime may copy into a cached level-`all` model (the CPU provider's
   * layout pass writes reordered convolution kernels into it). Beyond this, the cache keeps level
   * `extended` instead and the layout pass is redone at each load. Default 64 MiB.
   */
  readonly maxCopiedWeightBytes?: number;
}

export class SessionStore {
  private readonly byKey = new Map<string, Promise<LiveSession>>();
  private readonly byHandle = new Map<number, LiveSession>();
  private readonly sharedWeights = new SharedWeights();
  private readonly maxCopiedWeightBytes: number;

  constructor(
    readonly cacheDir: string = defaultCacheDir(),
    options: SessionStoreOptions = {},
  ) {
    this.maxCopiedWeightBytes = options.maxCopiedWeightBytes ?? 64 * 2 ** 20;
  }

  /** Live sessions (shared sessions count once). */
  get sessionCount(): number {
    return new Set(this.byHandle.values()).size;
  }

  /**
   * The weight bytes this store made resident, per checkpoint file: shared weights are held once by the store
   * whatever the number of sessions that read them; a hard-linked checkpoint is memory-mapped by onnxruntime
   * and its pages are shared by every session that reads it, so it counts once too; a checkpoint handed over
   * in memory is a private copy in every session. Copies onnxruntime makes on its own inside a session
   * (pre-packed kernels and reordered convolution weights of linked or in-memory checkpoints) are not known
   * here: see `prepacking` and docs/runtime.md.
   */
  residentWeights(): ResidentWeights[] {
    const byFile = new Map<string, ResidentWeights>();
    const held = this.sharedWeights.heldBytes();
    for (const live of new Set(this.byHandle.values())) {
      for (const { realPath, mode, bytes } of live.checkpoints) {
        const key = `${mode}|${realPath}`;
        const sessions = (byFile.get(key)?.sessions ?? 0) + 1;
        const residentBytes = mode === 'shared' ? (held.get(realPath) ?? 0) : mode === 'link' ? bytes : bytes * sessions;
        byFile.set(key, { file: realPath, mode, bytes, sessions, residentBytes });
      }
    }
    return [...byFile.values()];
  }

  /** The sum of `residentWeights()`. */
  residentWeightBytes(): number {
    return this.residentWeights().reduce((sum, w) => sum + w.residentBytes, 0);
  }

  /** Compiles `model` under the caller's `handle` id, reusing the session of an identical live compile. */
  async compile(handle: number, model: SerializedModel, options: CompileOptions = {}): Promise<CompiledGraphInfo> {
    if (this.byHandle.has(handle)) throw new Error(`graph handle ${handle} is already in use`);
    const resolved = resolveCompileOptions(options);
    const label = options.label ?? `graph ${model.hash.slice(0, 12)}`;
    const choice = await chooseExecutionProvider(resolved.device);
    // Every option that changes the session (not only the optimised model) separates sessions; the
    // memory options do not change the optimised model, so they are not part of its cache file's name.
    const key = [
      model.hash,
      choice.provider,
      resolved.graphOptimizationLevel,
      resolved.intraOpNumThreads,
      resolved.interOpNumThreads,
      resolved.externalWeights,
      resolved.enableMemPattern,
      resolved.enableCpuMemArena,
      resolved.prepacking,
      resolved.reportNodePlacement,
    ].join('|');
    let pending = this.byKey.get(key);
    const reused = pending !== undefined;
    if (!pending) {
      pending = this.createLive(key, model, resolved, label, choice);
      this.byKey.set(key, pending);
      pending.catch(() => this.byKey.delete(key));
    }
    const live = await pending;
    live.handles.add(handle);
    this.byHandle.set(handle, live);
    return reused
      ? { ...live.info, label, reused: true, createMs: 0, ...(live.nodePlacement ? { nodePlacement: live.nodePlacement } : {}) }
      : live.info;
  }

  async run(handle: number, feeds: Feeds, outputNames?: readonly string[]): Promise<RunResult> {
    const live = this.byHandle.get(handle);
    if (!live) throw new GraphRunError(`graph handle ${handle} is not compiled here (released, or never compiled)`);
    const { label, provider, inputs, outputs } = live.info;
    const tensors = { ...toInputTensors(feeds, inputs, label), ...live.weightFeeds?.tensors };
    const names = checkOutputNames(outputNames, outputs, label);
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await live.session.run(tensors, names);
    } catch (error) {
      throw new GraphRunError(`running ${label} on the ${provider} execution provider failed: ${messageOf(error)}`);
    }
    const result: RunResult = { outputs: fromOutputTensors(results, names) };
    if (live.profilePrefix === undefined) return result;
    live.session.endProfiling();
    live.nodePlacement = collectNodePlacement(live.profilePrefix);
    live.profilePrefix = undefined;
    return { ...result, nodePlacement: live.nodePlacement };
  }

  /** Drops one handle; the session is disposed when its last handle goes. Unknown handles are ignored. */
  async release(handle: number): Promise<void> {
    const live = this.byHandle.get(handle);
    if (!live) return;
    this.byHandle.delete(handle);
    live.handles.delete(handle);
    if (live.handles.size > 0) return;
    this.byKey.delete(live.key);
    await live.session.release();
    if (live.weightFeeds) this.sharedWeights.release(live.weightFeeds.keys);
    if (live.profilePrefix !== undefined) removeProfiles(live.profilePrefix);
  }

  async releaseAll(): Promise<void> {
    for (const handle of [...this.byHandle.keys()]) await this.release(handle);
  }

  private async createLive(
    key: string,
    model: SerializedModel,
    options: ResolvedCompileOptions,
    label: string,
    choice: { provider: string; reason: string },
  ): Promise<LiveSession> {
    const started = performance.now();
    const shared = options.externalWeights === 'shared' || (options.externalWeights === 'auto' && choice.provider === 'cpu');
    const asInputs = shared && model.externalFiles.length > 0 ? externalWeightsAsInputs(model) : undefined;
    const prepared = prepareModelFolder(this.cacheDir, asInputs?.model ?? model, shared ? 'auto' : options.externalWeights);
    const profilePrefix = options.reportNodePlacement ? path.join(prepared.folder, `profile-${process.pid}-${++profileCounter}-`) : undefined;
    // With float16 weights as inputs, a session created from the cached optimised model computes differently from one
    // that optimised the model itself (onnxruntime's float16 casts for the CPU are placed again on load), so a
    // replayed fp16 edit would not give the same bytes: such models are optimised at every compile instead.
    const halfInputs = asInputs?.weightInputs.some((w) => w.dtype === 'float16') ?? false;
    const sessionOptions = halfInputs ? { ...options, cacheOptimizedModel: false } : options;
    const { session, cache } = await createSession(prepared, choice.provider, sessionOptions, label, profilePrefix, this.maxCopiedWeightBytes);
    let weightFeeds: WeightFeeds | undefined;
    try {
      weightFeeds = asInputs ? this.sharedWeights.acquire(asInputs.weightInputs) : undefined;
    } catch (error) {
      await session.release();
      throw error;
    }
    const weightNames = new Set(asInputs?.weightInputs.map((w) => w.name));
    const info: CompiledGraphInfo = {
      hash: model.hash,
      label,
      provider: choice.provider,
      providerReason: choice.reason,
      // The weights the engine feeds itself are not the caller's inputs.
      inputs: session.inputMetadata.map(tensorInfo).filter((input) => !weightNames.has(input.name)),
      outputs: session.outputMetadata.map(tensorInfo),
      externalWeights: asInputs ? sharedWeightsReport(model) : prepared.weights,
      optimizedModelCache: cache,
      createMs: performance.now() - started,
      reused: false,
      folder: prepared.folder,
      options,
    };
    const checkpoints = asInputs
      ? info.externalWeights.map((w) => ({ realPath: fs.realpathSync(w.file), mode: w.mode, bytes: w.bytes }))
      : prepared.weights.map((w, i) => ({ realPath: prepared.realPaths[i]!, mode: w.mode, bytes: w.bytes }));
    return { key, checkpoints, weightFeeds, session, info, handles: new Set(), profilePrefix, nodePlacement: undefined };
  }
}

function sharedWeightsReport(model: SerializedModel): ExternalWeightsReport[] {
  return model.externalFiles.map(({ file }) => ({ file, location: '', mode: 'shared', bytes: fs.statSync(file).size }));
}

function tensorInfo(meta: ort.InferenceSession.ValueMetadata): TensorInfo {
  if (!meta.isTensor) return { name: meta.name, dtype: 'non-tensor', shape: [] };
  return { name: meta.name, dtype: meta.type, shape: [...meta.shape] };
}

async function createSession(
  prepared: PreparedModelFolder,
  provider: string,
  options: ResolvedCompileOptions,
  label: string,
  profilePrefix: string | undefined,
  maxCopiedWeightBytes: number,
): Promise<{ session: ort.InferenceSession; cache: OptimizedModelCacheState }> {
  const base: ort.InferenceSession.SessionOptions = {
    executionProviders: [executionProviderOption(provider)],
    intraOpNumThreads: options.intraOpNumThreads,
    interOpNumThreads: options.interOpNumThreads,
    // DirectML supports neither parallel execution nor memory patterns.
    executionMode: options.interOpNumThreads > 1 && provider !== 'dml' ? 'parallel' : 'sequential',
    enableMemPattern: options.enableMemPattern && provider !== 'dml',
    enableCpuMemArena: options.enableCpuMemArena,
    ...(options.prepacking ? {} : { extra: { session: { disable_prepacking: '1' } } }),
    // Errors only: onnxruntime's warnings go to the native stderr, which is the sidecar's log.
    logSeverityLevel: 3,
    ...(prepared.inMemory.length > 0 ? { externalData: prepared.inMemory.map(({ path: p, data }) => ({ path: p, data })) } : {}),
    ...(profilePrefix !== undefined ? { enableProfiling: true, profileFilePrefix: profilePrefix } : {}),
  };
  const create = (file: string, level: GraphOptimizationLevel, saveTo?: string) =>
    ort.InferenceSession.create(file, { ...base, graphOptimizationLevel: level, ...(saveTo ? { optimizedModelFilePath: saveTo } : {}) });
  const fail = (error: unknown) => sessionCreationError(provider, label, error);

  const level = options.graphOptimizationLevel;
  if (!options.cacheOptimizedModel || level === 'disabled') {
    return { session: await create(prepared.modelPath, level).catch(rethrow(fail)), cache: 'off' };
  }
  const cachedAt = (saved: GraphOptimizationLevel) => optimizedModelPath(prepared.folder, provider, saved, prepared.weightsFingerprint);
  // Level `all` is cached as such when that copies few weights, else as `extended`, loaded at `all`
  // so that only the layout pass runs again (see SessionStoreOptions.maxCopiedWeightBytes).
  const candidates: [file: string, loadLevel: GraphOptimizationLevel][] =
    level === 'all' ? [[cachedAt('all'), 'disabled'], [cachedAt('extended'), 'all']] : [[cachedAt(level), 'disabled']];
  for (const [file, loadLevel] of candidates) {
    if (!fs.existsSync(file)) continue;
    try {
      return { session: await create(file, loadLevel), cache: 'hit' };
    } catch {
      // An unreadable or incompatible cached model is rebuilt below; it is never a reason to fail.
      fs.rmSync(file, { force: true });
    }
  }

  const extended = cachedAt('extended');
  const extendedTemp = temporaryOptimizedModelPath(extended);
  const externalBytes = prepared.weights.reduce((sum, w) => sum + w.bytes, 0);
  if (level === 'all' && externalBytes > maxCopiedWeightBytes) {
    // The layout pass would copy more weights than allowed into the saved model (for a UNet, past protobuf's
    // 2 GB limit, which fails the save): save level `extended` straight away and load it at `all`.
    try {
      await (await create(prepared.modelPath, 'extended', extendedTemp)).release();
      keepOptimizedModel(extendedTemp, extended);
      return { session: await create(extended, 'all'), cache: 'written' };
    } catch {
      for (const file of [extendedTemp, extended]) fs.rmSync(file, { force: true });
      return { session: await create(prepared.modelPath, level).catch(rethrow(fail)), cache: 'failed' };
    }
  }

  const target = candidates[0]![0];
  const temp = temporaryOptimizedModelPath(target);
  let session: ort.InferenceSession;
  try {
    session = await create(prepared.modelPath, level, temp);
  } catch {
    fs.rmSync(temp, { force: true });
    // Saving an optimised model can fail where running does not (some providers cannot serialise their
    // fused nodes); try once more without the cache, and report that failure if it is real.
    return { session: await create(prepared.modelPath, level).catch(rethrow(fail)), cache: 'failed' };
  }
  try {
    const copiedBytes = fs.statSync(temp).size - fs.statSync(prepared.modelPath).size;
    if (level !== 'all' || copiedBytes <= maxCopiedWeightBytes) {
      keepOptimizedModel(temp, target);
      return { session, cache: 'written' };
    }
    fs.rmSync(temp, { force: true });
    await (await create(prepared.modelPath, 'extended', extendedTemp)).release();
    keepOptimizedModel(extendedTemp, extended);
    return { session, cache: 'written' };
  } catch {
    // The session is good; only the cache could not be written.
    for (const file of [temp, extendedTemp]) fs.rmSync(file, { force: true });
    return { session, cache: 'failed' };
  }
}

function keepOptimizedModel(temp: string, target: string): void {
  fs.renameSync(temp, target);
  removeStaleOptimizedModels(target);
}

function rethrow(wrap: (error: unknown) => Error): (error: unknown) => never {
  return (error) => {
    throw wrap(error);
  };
}

function sessionCreationError(provider: string, label: string, error: unknown): SessionCreationError {
  const reason = messageOf(error).trim();
  const advice =
    provider === 'cpu'
      ? 'The CPU provider runs every standard op, so the graph itself is likely invalid for onnxruntime (an op, type or attribute it rejects): this is a bug to report.'
      : `The engine does not fall back to another provider: choose another device (for example "cpu") or fix the ${provider} setup (see docs/runtime.md).`;
  return new SessionCreationError(provider, `Could not create an onnxruntime session for ${label} on the ${provider} execution provider: ${reason}. ${advice}`);
}

function removeProfiles(prefix: string): void {
  const folder = path.dirname(prefix);
  for (const name of fs.readdirSync(folder)) {
    if (name.startsWith(path.basename(prefix))) fs.rmSync(path.join(folder, name), { force: true });
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
