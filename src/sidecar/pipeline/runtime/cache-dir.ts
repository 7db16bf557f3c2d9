/** Where the pipeline keeps what it can recompute (trained LoRAs, onnxruntime session folders). */
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * `CLIPDRAG_CACHE_DIR` (the extension sets it to a folder in its global storage), else `$XDG_CACHE_HOME/clipdrag`,
 * else `~/.cache/clipdrag` (the CLI's).
 */
export function defaultPipelineCacheDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.CLIPDRAG_CACHE_DIR) return path.resolve(env.CLIPDRAG_CACHE_DIR);
  const base = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'clipdrag');
}
