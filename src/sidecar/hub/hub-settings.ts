// Endpoint, token, cache folder and offline switch, resolved the way Python's huggingface_hub resolves them,
// so one cache and one login serve both worlds.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { resolveUserPath } from './model-source';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubSettingsOverrides {
  /** Hub base URL; default `HF_ENDPOINT`, then https://huggingface.co. */
  endpoint?: string;
  /** Access token; default `HF_TOKEN`, then the token file `huggingface-cli login` writes. */
  token?: string;
  /** Cache folder (the `hub` folder itself); default `HF_HUB_CACHE`, then `HF_HOME/hub`, then ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Never touch the network; default `HF_HUB_OFFLINE`. */
  offline?: boolean;
}

export interface HubSettings {
  endpoint: string;
  token: string | undefined;
  /** Where the token came from, for error messages ("HF_TOKEN", "the token file ...", "the request"). */
  tokenSource: string | undefined;
  cacheDir: string;
  offline: boolean;
}

type Env = Readonly<Record<string, string | undefined>>;

export function resolveHubSettings(overrides: HubSettingsOverrides = {}, env: Env = process.env): HubSettings {
  const home = homedir();
  const endpoint = (overrides.endpoint || env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const { token, tokenSource } = resolveToken(overrides.token, env, home);
  const cacheDir = overrides.cacheDir
    ? resolveUserPath(overrides.cacheDir, process.cwd(), home)
    : defaultCacheDir(env, home);
  const offline = overrides.offline ?? isTruthy(env.HF_HUB_OFFLINE);
  return { endpoint, token, tokenSource, cacheDir, offline };
}

/** Same precedence as huggingface_hub: HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE > HF_HOME/hub > XDG_CACHE_HOME/huggingface/hub. */
export function defaultCacheDir(env: Env = process.env, home: string = homedir()): string {
  const explicit = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  if (explicit) return resolveUserPath(explicit, process.cwd(), home);
  return path.join(hfHome(env, home), 'hub');
}

function hfHome(env: Env, home: string): string {
  if (env.HF_HOME) return resolveUserPath(env.HF_HOME, process.cwd(), home);
  const cacheHome = env.XDG_CACHE_HOME ? resolveUserPath(env.XDG_CACHE_HOME, process.cwd(), home) : path.join(home, '.cache');
  return path.join(cacheHome, 'huggingface');
}

function resolveToken(explicit: string | undefined, env: Env, home: string): { token?: string; tokenSource?: string } {
  if (explicit?.trim()) return { token: explicit.trim(), tokenSource: 'the request' };
  if (env.HF_TOKEN?.trim()) return { token: env.HF_TOKEN.trim(), tokenSource: 'HF_TOKEN' };
  if (env.HUGGING_FACE_HUB_TOKEN?.trim()) return { token: env.HUGGING_FACE_HUB_TOKEN.trim(), tokenSource: 'HUGGING_FACE_HUB_TOKEN' };
  const tokenFile = env.HF_TOKEN_PATH ? resolveUserPath(env.HF_TOKEN_PATH, process.cwd(), home) : path.join(hfHome(env, home), 'token');
  try {
    const stored = readFileSync(tokenFile, 'utf8').trim();
    if (stored) return { token: stored, tokenSource: `the token file ${tokenFile}` };
  } catch {
    // No stored login: anonymous access.
  }
  return {};
}

function isTruthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
}
