// Where the integration-test environment (code-server + headless Chromium) lives.
// It sits in a per-user cache folder outside the repository, so a fresh clone (as CI makes) reuses it.
// Override the folder with CLIPDRAG_TEST_ENV_DIR.
import os from 'node:os';
import path from 'node:path';

export const CODE_SERVER_VERSION = '4.100.3';
/** The @vscode/ripgrep version that code-server 4.100.3's VS Code depends on (its postinstall looks up this cache). */
export const VSCODE_RIPGREP_VERSION = '1.15.11';
export const RIPGREP_ASSET = 'ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz';

export function testEnvRoot() {
  if (process.env.CLIPDRAG_TEST_ENV_DIR) return path.resolve(process.env.CLIPDRAG_TEST_ENV_DIR);
  const cacheHome = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cacheHome, 'clipdrag-test-env');
}

export function testEnvPaths(root = testEnvRoot()) {
  const codeServerDir = path.join(root, `code-server-${CODE_SERVER_VERSION}`);
  const chromiumRoot = path.join(root, 'chromium', 'root');
  return {
    root,
    debsDir: path.join(root, 'build-debs'),
    debRoot: path.join(root, 'build-debroot'),
    codeServerDir,
    codeServerBin: path.join(codeServerDir, 'node_modules', '.bin', 'code-server'),
    codeServerStamp: path.join(codeServerDir, '.complete'),
    chromiumDebs: path.join(root, 'chromium', 'debs'),
    chromiumRoot,
    chromiumBin: path.join(chromiumRoot, 'usr', 'lib', 'chromium', 'chromium'),
    chromiumStamp: path.join(root, 'chromium', '.complete'),
    chromiumLibraryPath: [
      path.join(chromiumRoot, 'usr', 'lib', 'x86_64-linux-gnu'),
      path.join(chromiumRoot, 'usr', 'lib', 'x86_64-linux-gnu', 'pulseaudio'),
      path.join(chromiumRoot, 'usr', 'lib', 'chromium'),
    ].join(':'),
  };
}
