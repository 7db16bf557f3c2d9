/**
 * What a series of edits shares (a batch): one engine (its worker thread and session folders), the models as
 * resolved and opened for the first edit that used them, and the compiled graphs of the previous edit, which the
 * next edit of an image of the same size runs again instead of compiling them anew. Graphs the latest edit did not
 * use are released after it: between edits the session holds one edit's graphs, and while an edit runs at most
 * those of the previous edit and its own (two sets when the working size changes).
 *
 * Edits that share a session run one after another. `close()` releases everything.
 */
import * as path from 'node:path';
import { Engine, type CompiledGraph } from '../../engine/runtime/engine';
import { defaultPipelineCacheDir } from '../runtime/cache-dir';

/** Compiled graphs kept between edits, keyed by device and graph hash. */
export class CompiledGraphCache {
  private readonly graphs = new Map<string, Promise<CompiledGraph>>();
  private usedSinceSweep = new Set<string>();

  /** The pending or compiled graph under `key`, marking it as used by the current edit. */
  get(key: string): Promise<CompiledGraph> | undefined {
    const graph = this.graphs.get(key);
    if (graph) this.usedSinceSweep.add(key);
    return graph;
  }

  set(key: string, graph: Promise<CompiledGraph>): void {
    this.graphs.set(key, graph);
    this.usedSinceSweep.add(key);
    graph.catch(() => {
      if (this.graphs.get(key) === graph) this.graphs.delete(key);
    });
  }

  get size(): number {
    return this.graphs.size;
  }

  /** Releases the graphs not used since the previous sweep (an edit ends with one). */
  async sweep(engine: Engine): Promise<void> {
    const unused = [...this.graphs.keys()].filter((key) => !this.usedSinceSweep.has(key));
    this.usedSinceSweep = new Set();
    await this.release(engine, unused);
  }

  async clear(engine: Engine): Promise<void> {
    await this.release(engine, [...this.graphs.keys()]);
  }

  private async release(engine: Engine, keys: string[]): Promise<void> {
    for (const key of keys) {
      const pending = this.graphs.get(key);
      this.graphs.delete(key);
      const graph = await pending?.catch(() => null);
      if (graph) await engine.release(graph);
    }
  }
}

export interface EditSessionOptions {
  /** An engine to use (kept open by `close()`); default: one of the session's own. */
  readonly engine?: Engine;
  /** Pipeline cache folder for the session's own engine; default `defaultPipelineCacheDir()`. */
  readonly cacheDir?: string;
}

export class EditSession {
  readonly engine: Engine;
  readonly graphs = new CompiledGraphCache();
  private readonly ownsEngine: boolean;
  private readonly opened = new Map<string, Promise<unknown>>();
  private closed = false;

  constructor(options: EditSessionOptions = {}) {
    this.ownsEngine = options.engine === undefined;
    this.engine = options.engine ?? new Engine({ cacheDir: path.join(options.cacheDir ?? defaultPipelineCacheDir(), 'sessions') });
  }

  /**
   * The value `open()` produced for `key` in an earlier edit of this session, or a new one (a failure is not
   * kept, so the next edit tries again).
   */
  reuse<T>(key: string, open: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('This edit session is closed.'));
    let value = this.opened.get(key) as Promise<T> | undefined;
    if (!value) {
      value = open();
      this.opened.set(key, value);
      value.catch(() => {
        if (this.opened.get(key) === value) this.opened.delete(key);
      });
    }
    return value;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.opened.clear();
    await this.graphs.clear(this.engine);
    if (this.ownsEngine) await this.engine.close();
  }
}
