// Keeps the developer's own Hugging Face setup (HF_TOKEN, a stored login, HF_HUB_OFFLINE, HF_ENDPOINT, cache
// variables) out of tests: everything the model store reads from the environment points at a fresh folder.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const VARIABLES = ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_TOKEN_PATH', 'HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HUB_OFFLINE', 'HF_ENDPOINT', 'XDG_CACHE_HOME'];

/** Clears the HF variables and sets HF_HOME to an empty temporary folder; returns a function that undoes it. */
export function isolateHubEnvironment(): () => void {
  const saved = new Map(VARIABLES.map((name) => [name, process.env[name]]));
  for (const name of VARIABLES) delete process.env[name];
  const home = mkdtempSync(path.join(tmpdir(), 'hf-home-'));
  process.env.HF_HOME = home;
  return () => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    rmSync(home, { recursive: true, force: true });
  };
}
