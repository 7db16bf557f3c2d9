// The suite's side of a small file channel to the test runner, for checks only the runner can make
// (the runner drives the browser page, so it can read the webview's DOM and the notifications, and click).
// The runner names the folder in CLIPDRAG_TEST_CHANNEL; each query is request-<n>.json, answered by
// response-<n>.json. Files are written to a temporary name and renamed, so a reader never sees half.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const CHANNEL_ENV = 'CLIPDRAG_TEST_CHANNEL';

/** Which CLIPDrag editor page: the image's file name, and which of its editors when several are open (default 0). */
export interface EditorPageRef {
  image: string;
  index?: number;
}

export type RunnerQuery =
  | { kind: 'webviewImages' }
  | { kind: 'notifications' }
  | { kind: 'editorActions' }
  | { kind: 'clickEditorAction'; label: string }
  | ({ kind: 'editorPages' } & EditorPageRef)
  | ({ kind: 'editorClick'; x: number; y: number } & EditorPageRef)
  | ({ kind: 'editorDrag'; points: [number, number][] } & EditorPageRef)
  | ({ kind: 'editorPress'; key: string } & EditorPageRef)
  | ({ kind: 'editorClickElement'; selector: string } & EditorPageRef)
  | ({ kind: 'editorKeys'; keys: string[] } & EditorPageRef)
  | { kind: 'clickQuickPickItem'; label: string }
  | { kind: 'acceptQuickPick' }
  | { kind: 'clickNotificationButton'; message: string; label: string };

/** What a CLIPDrag editor page shows (runner query `editorPages`). */
export interface EditorPageInfo {
  points: number;
  tool: string;
  revision: number;
  imageSize: string;
  status: string;
  runStatus: string;
  pointList: string[];
  results: string[];
  /** The mode each result shows, as the page's `data-mode` (empty where its recipe names none). */
  resultModes: string[];
  /** The comparison view: which one shows, its caption, and the images shown as before and after. */
  compare: { view: 'hidden' | 'empty' | 'slider' | 'side'; caption: string; before: string; after: string };
}

export interface WebviewImageInfo {
  frameUrl: string;
  src: string;
  complete: boolean;
  naturalWidth: number;
  naturalHeight: number;
  status: string;
  contentSecurityPolicy: string;
}

function channelDir(): string | undefined {
  return process.env[CHANNEL_ENV] || undefined;
}

/** True when the runner can look at the page (code-server + Playwright; not desktop VS Code). */
export function runnerCanQueryPage(): boolean {
  const dir = channelDir();
  if (!dir) return false;
  try {
    return (JSON.parse(fs.readFileSync(path.join(dir, 'runner.json'), 'utf8')) as { pageQueries?: boolean }).pageQueries === true;
  } catch {
    return false;
  }
}

function writeAtomically(file: string, content: string): void {
  fs.writeFileSync(`${file}.tmp`, content);
  fs.renameSync(`${file}.tmp`, file);
}

let nextId = 1;

export async function askRunner(query: { kind: 'webviewImages' }, timeoutMs?: number): Promise<WebviewImageInfo[]>;
export async function askRunner(query: { kind: 'notifications' } | { kind: 'editorActions' }, timeoutMs?: number): Promise<string[]>;
export async function askRunner(query: { kind: 'clickEditorAction'; label: string }, timeoutMs?: number): Promise<true>;
export async function askRunner(query: { kind: 'editorPages' } & EditorPageRef, timeoutMs?: number): Promise<EditorPageInfo[]>;
export async function askRunner(query: Exclude<RunnerQuery, { kind: 'webviewImages' | 'notifications' | 'editorActions' | 'clickEditorAction' | 'editorPages' }>, timeoutMs?: number): Promise<true>;
export async function askRunner(query: RunnerQuery, timeoutMs = 15_000): Promise<unknown> {
  const dir = channelDir();
  if (!dir) throw new Error(`${CHANNEL_ENV} is not set: the runner channel is only available under test/integration/run.mjs`);
  const id = nextId++;
  writeAtomically(path.join(dir, `request-${id}.json`), JSON.stringify(query));
  const responseFile = path.join(dir, `response-${id}.json`);
  for (const end = Date.now() + timeoutMs; Date.now() < end; await delay(50)) {
    if (!fs.existsSync(responseFile)) continue;
    const response = JSON.parse(fs.readFileSync(responseFile, 'utf8')) as { ok: true; value: unknown } | { ok: false; error: string };
    if (!response.ok) throw new Error(`runner could not answer ${query.kind}: ${response.error}`);
    return response.value;
  }
  throw new Error(`runner did not answer ${query.kind} within ${timeoutMs} ms`);
}

/** Tells the runner about a sidecar process, so it can check that none survives the window. */
export function reportSidecarPid(pid: number): void {
  const dir = channelDir();
  if (dir) fs.appendFileSync(path.join(dir, 'sidecar-pids.txt'), `${pid}\n`);
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
