/** Keeps the built editor page (dist/webview.js) current before a benchmark loads it. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Why the bundle must be rebuilt, or undefined when it is current: it is missing, it has no source map (a
 * production build, whose sources are unknown), or one of the sources its map lists is newer. Sources that do
 * not exist are skipped: packages' maps name sources they do not ship, and a project file that went away was
 * imported by one that changed.
 */
export function staleBundleReason(bundle: string): string | undefined {
  if (!fs.existsSync(bundle)) return `${path.basename(bundle)} does not exist`;
  const map = `${bundle}.map`;
  if (!fs.existsSync(map)) return `${path.basename(bundle)} has no source map to tell its sources`;
  const builtMs = fs.statSync(bundle).mtimeMs;
  const { sources } = JSON.parse(fs.readFileSync(map, 'utf8')) as { sources?: unknown };
  if (!Array.isArray(sources) || sources.length === 0) return `${path.basename(map)} lists no sources`;
  for (const source of sources) {
    // Source map paths are relative to the map's folder.
    const file = path.resolve(path.dirname(map), String(source));
    if (fs.existsSync(file) && fs.statSync(file).mtimeMs > builtMs) return `its source ${path.relative(path.dirname(map), file)} changed since the build`;
  }
  return undefined;
}

/** Runs the project's build (`node esbuild.mjs`) when dist/webview.js is stale; its output goes to stderr. */
export function ensureWebviewBuilt(repo: string): void {
  const reason = staleBundleReason(path.join(repo, 'dist', 'webview.js'));
  if (!reason) return;
  process.stderr.write(`building the extension: dist/webview.js is stale (${reason})\n`);
  execFileSync(process.execPath, ['esbuild.mjs'], { cwd: repo, stdio: ['ignore', 2, 2] });
  const still = staleBundleReason(path.join(repo, 'dist', 'webview.js'));
  if (still) throw new Error(`the build did not produce a current dist/webview.js (${still})`);
}
