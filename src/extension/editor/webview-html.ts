// The CLIPDrag editor's HTML shell: a strict Content-Security-Policy, one nonce'd script, one stylesheet.
import { randomBytes } from 'node:crypto';
import type * as vscode from 'vscode';

export interface WebviewHtmlOptions {
  webview: vscode.Webview;
  scriptUri: vscode.Uri;
  styleUri: vscode.Uri;
  title: string;
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [`default-src 'none'`, `img-src ${cspSource} blob: data:`, `style-src ${cspSource}`, `script-src 'nonce-${nonce}'`].join('; ');
}

export function renderWebviewHtml({ webview, scriptUri, styleUri, title }: WebviewHtmlOptions): string {
  const nonce = randomBytes(18).toString('base64');
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy(webview.cspSource, nonce)}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  <link rel="stylesheet" href="${webview.asWebviewUri(styleUri).toString()}">
  <title>${escapeHtml(title)}</title>
</head>
<body>
  <main id="clipdrag-editor">
    <div class="canvas"><img id="clipdrag-image" alt=""></div>
    <p id="clipdrag-status" role="status">Loading…</p>
  </main>
  <script nonce="${nonce}" src="${webview.asWebviewUri(scriptUri).toString()}"></script>
</body>
</html>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
