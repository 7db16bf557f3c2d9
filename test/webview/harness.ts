// A test page for the BUILT editor page (dist/webview.js + media/editor.css) in headless Chromium: the same HTML and
// Content-Security-Policy the extension serves (renderWebviewHtml), theme variables set the way VS Code sets them,
// `acquireVsCodeApi` provided, and a real message channel — what the page posts arrives here, and `send` delivers
// messages to the page as `message` events, as VS Code does. Files are served from https://clipdrag.test/ (the
// page's resource origin) by request interception; nothing touches the network.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { renderWebviewHtml } from '../../src/extension/editor/webview-html';
import { EDITOR_KEY_COMMANDS, type FromWebviewMessage, type KeyboundAction, type ToWebviewMessage } from '../../src/shared/webview-messages';
import { testEnvPaths } from '../integration/test-env.mjs';
import { DARK_THEME, LIGHT_THEME } from './themes';

export const ORIGIN = 'https://clipdrag.test';
export const REPO = path.resolve(__dirname, '..', '..');

export type Theme = 'dark' | 'light';

export interface EditorPageOptions {
  theme?: Theme;
  size?: { width: number; height: number };
  /** Files served at ${ORIGIN}/files/<name>. */
  files?: Record<string, Buffer>;
  imageName?: string;
}

/** Why the webview tests cannot run here, or undefined when they can. */
export function missingPrerequisite(): string | undefined {
  const env = testEnvPaths();
  if (!fs.existsSync(env.chromiumBin)) return `headless Chromium is not installed (${env.chromiumBin}); run "node scripts/setup-test-env.mjs"`;
  for (const file of ['dist/webview.js', 'media/editor.css']) if (!fs.existsSync(path.join(REPO, file))) return `${file} is missing; run "npm run build"`;
  return undefined;
}

let browser: Browser | undefined;

export async function launchBrowser(): Promise<Browser> {
  if (browser) return browser;
  const env = testEnvPaths();
  browser = await chromium.launch({
    executablePath: env.chromiumBin,
    headless: true,
    env: { ...process.env, LD_LIBRARY_PATH: [env.chromiumLibraryPath, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') } as Record<string, string>,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return browser;
}

export async function closeBrowser(): Promise<void> {
  await browser?.close();
  browser = undefined;
}

/** Lets messages travel both ways and a frame be drawn. */
export async function settle(page: EditorPage, ms = 60): Promise<void> {
  await page.page.evaluate('new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))');
  await new Promise((resolve) => setTimeout(resolve, ms));
}

export class EditorPage {
  /** Every message the page posted, in order. */
  readonly received: FromWebviewMessage[] = [];
  readonly consoleErrors: string[] = [];
  private readonly waiters: { predicate: (m: FromWebviewMessage) => boolean; resolve: (m: FromWebviewMessage) => void }[] = [];
  private listener: ((message: FromWebviewMessage) => void) | undefined;

  private constructor(readonly page: Page) {}

  static async open(options: EditorPageOptions = {}): Promise<EditorPage> {
    const theme = options.theme ?? 'dark';
    const context = await (await launchBrowser()).newContext({ viewport: options.size ?? { width: 1280, height: 800 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    const editor = new EditorPage(page);
    page.on('console', (message) => {
      if (message.type() === 'error') editor.consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => editor.consoleErrors.push(`page error: ${error.message}`));
    await page.exposeFunction('__clipdragToHost', (message: FromWebviewMessage) => editor.deliver(message));
    const variables = theme === 'dark' ? DARK_THEME : LIGHT_THEME;
    // A string, not a function: the test runner's compiler would add helpers to a function that the page lacks.
    await page.addInitScript(`(() => {
      let state;
      const variables = ${JSON.stringify(variables)};
      window.acquireVsCodeApi = () => ({
        postMessage: (message) => window.__clipdragToHost(JSON.parse(JSON.stringify(message))),
        getState: () => state,
        setState: (next) => { state = next; },
      });
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (event) => window.__cspViolations.push(event.violatedDirective + ': ' + event.blockedURI));
      // What VS Code does to every webview: theme variables on <html>, the theme kind as a body class.
      document.addEventListener('DOMContentLoaded', () => {
        for (const [name, value] of Object.entries(variables)) document.documentElement.style.setProperty('--vscode-' + name, value);
        document.body.classList.add('vscode-${theme}');
        document.body.dataset.vscodeThemeKind = 'vscode-${theme}';
      });
    })();`);
    const files = options.files ?? {};
    const html = renderWebviewHtml({
      webview: { cspSource: ORIGIN, asWebviewUri: (uri) => ({ toString: () => `${ORIGIN}/${String(uri)}` }) as never },
      scriptUri: 'dist/webview.js' as never,
      styleUri: 'media/editor.css' as never,
      title: options.imageName ?? 'image.png',
    });
    await context.route(`${ORIGIN}/**`, async (route) => {
      const url = new URL(route.request().url());
      const name = decodeURIComponent(url.pathname.slice(1));
      if (name === 'index.html') return route.fulfill({ contentType: 'text/html', body: html });
      if (name === 'dist/webview.js' || name === 'media/editor.css') {
        return route.fulfill({ contentType: name.endsWith('.js') ? 'text/javascript' : 'text/css', body: fs.readFileSync(path.join(REPO, name)) });
      }
      const file = name.startsWith('files/') ? files[name.slice('files/'.length)] : undefined;
      if (file) return route.fulfill({ contentType: name.endsWith('.png') ? 'image/png' : 'application/octet-stream', body: file });
      return route.fulfill({ status: 404, body: 'not found' });
    });
    await page.goto(`${ORIGIN}/index.html`);
    return editor;
  }

  /** Handles every message the page posts (the test's stand-in for the extension), starting with those already posted. */
  onMessage(listener: (message: FromWebviewMessage) => void): void {
    this.listener = listener;
    for (const message of this.received) listener(message);
  }

  private deliver(message: FromWebviewMessage): void {
    this.received.push(message);
    this.listener?.(message);
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const waiter = this.waiters[i]!;
      if (waiter.predicate(message)) {
        this.waiters.splice(i, 1);
        waiter.resolve(message);
      }
    }
  }

  /** The first message (from now on, or already received after `since`) matching the predicate. */
  waitFor<T extends FromWebviewMessage>(predicate: (m: FromWebviewMessage) => m is T, options: { since?: number; timeoutMs?: number } = {}): Promise<T> {
    const already = this.received.slice(options.since ?? this.received.length).find(predicate);
    if (already) return Promise.resolve(already);
    const timeoutMs = options.timeoutMs ?? 5000;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching message from the page within ${timeoutMs} ms; received: ${JSON.stringify(this.received.map((m) => m.type))}`)), timeoutMs);
      this.waiters.push({
        predicate,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as T);
        },
      });
    });
  }

  /**
   * Presses a key as a user does in VS Code: the page gets the key press, and when package.json binds the key to an
   * editor command (a keybinding VS Code owns), the page also gets what that command sends it — as the extension
   * does for the active editor. `key` in Playwright's notation ('b', 'Control+Enter').
   */
  async press(key: string): Promise<void> {
    await this.page.keyboard.press(key);
    const action = boundAction(key);
    if (action && action !== 'cancel') await this.send({ type: 'shortcut', action });
  }

  async send(message: ToWebviewMessage): Promise<void> {
    // As VS Code delivers them: a `message` event on the page's window.
    await this.page.evaluate(`window.postMessage(${JSON.stringify(message)}, '*')`);
  }

  async cspViolations(): Promise<string[]> {
    return this.page.evaluate('window.__cspViolations') as Promise<string[]>;
  }

  /** The canvas's view transform (the page publishes it for tests and tools). */
  async view(): Promise<{ scale: number; offsetX: number; offsetY: number }> {
    return JSON.parse((await this.page.getAttribute('#canvas-stack', 'data-view')) ?? 'null') as { scale: number; offsetX: number; offsetY: number };
  }

  /** Page coordinates of an image pixel's centre. */
  async pagePoint(x: number, y: number): Promise<{ x: number; y: number }> {
    const view = await this.view();
    const box = (await this.page.locator('#canvas-stack').boundingBox())!;
    return { x: box.x + view.offsetX + (x + 0.5) * view.scale, y: box.y + view.offsetY + (y + 0.5) * view.scale };
  }

  async click(x: number, y: number): Promise<void> {
    const at = await this.pagePoint(x, y);
    await this.page.mouse.click(at.x, at.y);
  }

  /** Presses at the first image point, moves through the others, releases at the last. */
  async drag(points: [number, number][], stepsBetween = 4): Promise<void> {
    const first = await this.pagePoint(...points[0]!);
    await this.page.mouse.move(first.x, first.y);
    await this.page.mouse.down();
    for (const point of points.slice(1)) {
      const at = await this.pagePoint(...point);
      await this.page.mouse.move(at.x, at.y, { steps: stepsBetween });
    }
    await this.page.mouse.up();
  }

  async close(): Promise<void> {
    await this.page.context().close();
  }
}

interface Keybinding {
  command: string;
  key: string;
}

/** The editor action package.json binds to a key (Playwright notation), if any. */
function boundAction(key: string): KeyboundAction | 'cancel' | undefined {
  const manifest = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { contributes: { keybindings: Keybinding[] } };
  const vscodeKey = key.toLowerCase().replace('control', 'ctrl');
  const binding = manifest.contributes.keybindings.find((b) => b.key === vscodeKey);
  return binding ? EDITOR_KEY_COMMANDS[binding.command] : undefined;
}
