// The CLIPDrag editor's HTML: a strict Content-Security-Policy, one nonce'd script, one stylesheet, and the page's
// static structure (the script fills in the parameters, lists and canvases' content).
import { randomBytes } from 'node:crypto';
import type * as vscode from 'vscode';

export interface WebviewHtmlOptions {
  webview: Pick<vscode.Webview, 'cspSource' | 'asWebviewUri'>;
  scriptUri: vscode.Uri;
  styleUri: vscode.Uri;
  title: string;
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [`default-src 'none'`, `img-src ${cspSource} blob: data:`, `style-src ${cspSource}`, `script-src 'nonce-${nonce}'`].join('; ');
}

export function renderWebviewHtml({ webview, scriptUri, styleUri, title }: WebviewHtmlOptions): string {
  const nonce = randomBytes(18).toString('base64');
  const name = escapeHtml(title);
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy(webview.cspSource, nonce)}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  <link rel="stylesheet" href="${webview.asWebviewUri(styleUri).toString()}">
  <title>${name}</title>
</head>
<body>
  <main id="clipdrag-editor" data-image-name="${name}">
    <div class="toolbar" role="toolbar" aria-label="Editor tools">
      <div class="group" role="radiogroup" aria-label="Tool" data-edit-only>
        <button type="button" class="tool" role="radio" data-tool="point" aria-keyshortcuts="P" title="Points (P): click a handle, then its target; drag to move; Delete removes the selected pair">Points</button>
        <button type="button" class="tool" role="radio" data-tool="brush" aria-keyshortcuts="B" title="Mask brush (B): paint the region that may change">Brush</button>
        <button type="button" class="tool" role="radio" data-tool="eraser" aria-keyshortcuts="E" title="Mask eraser (E)">Eraser</button>
        <button type="button" class="tool" role="radio" data-tool="pan" aria-keyshortcuts="H" title="Pan (H, or hold Space): drag to move the view">Pan</button>
      </div>
      <label class="brush-size" title="Brush size in image pixels ([ and ])" data-edit-only>Size
        <input id="brush-size" type="range" min="1" max="500" value="24" aria-keyshortcuts="[ ]">
        <output id="brush-size-value" for="brush-size">24 px</output>
      </label>
      <button type="button" id="toggle-mask" data-edit-only aria-pressed="true" aria-keyshortcuts="M" title="Show or hide the mask (M)">Mask</button>
      <span class="separator" role="separator"></span>
      <div class="group" role="group" aria-label="Zoom" data-edit-only>
        <button type="button" id="zoom-out" aria-label="Zoom out" aria-keyshortcuts="-" title="Zoom out (-)">−</button>
        <output id="zoom-level" aria-live="off">100%</output>
        <button type="button" id="zoom-in" aria-label="Zoom in" aria-keyshortcuts="+" title="Zoom in (+)">+</button>
        <button type="button" id="zoom-fit" aria-keyshortcuts="F 0" title="Fit the image in the view (F or 0)">Fit</button>
        <button type="button" id="zoom-actual" aria-keyshortcuts="1" title="Actual size (1)">1:1</button>
      </div>
      <span class="separator" role="separator"></span>
      <div class="group" role="group" aria-label="History">
        <button type="button" id="undo" aria-keyshortcuts="Control+Z" title="Undo (Ctrl+Z)">Undo</button>
        <button type="button" id="redo" aria-keyshortcuts="Control+Shift+Z" title="Redo (Ctrl+Shift+Z)">Redo</button>
        <button type="button" id="clear-mask" data-edit-only aria-keyshortcuts="Shift+M" title="Remove the mask (Shift+M); undoable">Clear Mask</button>
        <button type="button" id="clear-all" aria-keyshortcuts="Shift+Delete" title="Remove every point pair and the mask (Shift+Delete); undoable">Clear</button>
      </div>
      <span class="spacer"></span>
      <div class="group" role="radiogroup" aria-label="View">
        <button type="button" class="view-mode" role="radio" data-view="edit" aria-keyshortcuts="C" title="Edit the image (C toggles)">Edit</button>
        <button type="button" class="view-mode" role="radio" data-view="compare" aria-keyshortcuts="C" title="Compare the image with a result (C toggles)">Compare</button>
      </div>
    </div>
    <div id="notice" class="notice" role="alert" hidden>
      <span class="notice-message"></span>
      <span class="notice-actions"></span>
      <button type="button" class="notice-close" aria-label="Dismiss message">×</button>
    </div>
    <div class="workspace">
      <div class="stage" id="stage">
        <div id="canvas-stack" class="canvas-stack" tabindex="0" role="application" aria-roledescription="image editor" aria-label="Image canvas for ${name}" aria-describedby="points-summary">
          <canvas id="layer-image" aria-hidden="true"></canvas>
          <canvas id="layer-mask" aria-hidden="true"></canvas>
          <canvas id="layer-overlay" aria-hidden="true"></canvas>
        </div>
        <div id="compare" class="compare" hidden>
          <div class="compare-controls" role="group" aria-label="Comparison">
            <button type="button" class="compare-mode" data-compare="slider" aria-pressed="true">Before / after</button>
            <button type="button" class="compare-mode" data-compare="side" aria-pressed="false">Side by side</button>
            <span id="compare-caption" class="caption"></span>
          </div>
          <div id="compare-slider" class="compare-slider">
            <div class="compare-frame">
              <img id="compare-before-overlay" alt="Source image">
              <img id="compare-after-overlay" class="after" alt="Result image">
              <div id="compare-divider" class="divider" aria-hidden="true"></div>
            </div>
            <input id="compare-position" type="range" min="0" max="100" value="50" aria-label="Before/after split position (percent of the width showing the source)">
          </div>
          <div id="compare-side" class="compare-side" hidden>
            <figure><img id="compare-before-side" alt="Source image"><figcaption>Before</figcaption></figure>
            <figure><img id="compare-after-side" alt="Result image"><figcaption>After</figcaption></figure>
          </div>
          <p id="compare-empty" class="empty">No results yet. Run an edit, or pick a result in the history.</p>
        </div>
        <img id="clipdrag-image" alt="" hidden>
      </div>
      <aside class="side" aria-label="Edit settings">
        <section aria-labelledby="prompts-heading">
          <h2 id="prompts-heading">Prompts</h2>
          <vscode-label for="prompt">What the image shows</vscode-label>
          <vscode-textarea id="prompt" rows="2" resize="vertical" placeholder="a photo of a cat on a sofa" aria-label="Prompt: what the image shows"></vscode-textarea>
          <vscode-label for="edit-prompt">What it should become (optional; required in Text only mode)</vscode-label>
          <vscode-textarea id="edit-prompt" rows="2" resize="vertical" placeholder="empty: the prompt above is used" aria-label="Target prompt: what the image should become"></vscode-textarea>
          <vscode-label for="mode">Mode</vscode-label>
          <vscode-single-select id="mode" aria-label="Edit mode">
            <vscode-option value="clipdrag" description="Drag points and text guidance">CLIPDrag (drag + text)</vscode-option>
            <vscode-option value="drag" description="Drag points only, as DragDiffusion">Drag only (DragDiffusion)</vscode-option>
            <vscode-option value="freedrag" description="Drag points only, as FreeDrag: templates and line search">FreeDrag (drag only)</vscode-option>
            <vscode-option value="text" description="No points: the target prompt alone">Text only (no points)</vscode-option>
          </vscode-single-select>
        </section>
        <section aria-labelledby="points-heading">
          <h2 id="points-heading">Point pairs</h2>
          <p id="points-summary" class="hint">No point pairs. With the Points tool, click a handle, then where it should go.</p>
          <ol id="points-list" class="points-list" aria-label="Point pairs"></ol>
        </section>
        <vscode-collapsible id="parameters-section" heading="Parameters" description="defaults from CLIPDrag">
          <div id="parameters" class="parameters"></div>
        </vscode-collapsible>
        <section aria-labelledby="run-heading">
          <h2 id="run-heading">Run</h2>
          <div class="run-buttons">
            <vscode-button id="run" aria-keyshortcuts="Control+Enter" title="Run the edit (Ctrl+Enter)">Run</vscode-button>
            <vscode-button id="cancel" secondary disabled aria-keyshortcuts="Escape" title="Cancel the run (Esc)">Cancel</vscode-button>
          </div>
          <div id="run-status" class="run-status" role="status" aria-live="polite"></div>
          <vscode-progress-bar id="run-progress" hidden aria-label="Progress of the current stage"></vscode-progress-bar>
          <p id="run-losses" class="hint" hidden></p>
          <img id="run-preview" class="run-preview" alt="Live preview of the edit" hidden>
          <div id="run-actions" class="actions"></div>
        </section>
        <section aria-labelledby="results-heading">
          <h2 id="results-heading">Results</h2>
          <ul id="results" class="results" aria-label="Results of this image, newest first"></ul>
        </section>
        <vscode-collapsible heading="Keyboard shortcuts">
          <dl id="shortcuts" class="shortcuts"></dl>
        </vscode-collapsible>
      </aside>
    </div>
    <p id="clipdrag-status" class="status" role="status">Loading…</p>
  </main>
  <script nonce="${nonce}" src="${webview.asWebviewUri(scriptUri).toString()}"></script>
</body>
</html>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
