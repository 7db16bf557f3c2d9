// The CLIPDrag editor's page: shows the image the extension names, and reports back whether it loaded
// (and at which size). The drawing tools (points, mask, prompts) are built on top of this later.
import type { FromWebviewMessage, ToWebviewMessage } from '../shared/webview-messages';

interface VsCodeApi {
  postMessage(message: FromWebviewMessage): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const image = document.getElementById('clipdrag-image') as HTMLImageElement;
const status = document.getElementById('clipdrag-status') as HTMLParagraphElement;

function showImage(src: string, name: string): void {
  status.textContent = `Loading ${name}…`;
  image.alt = name;
  image.onload = () => {
    status.textContent = `${name} — ${image.naturalWidth} × ${image.naturalHeight} px`;
    vscode.postMessage({ type: 'imageLoaded', src, width: image.naturalWidth, height: image.naturalHeight });
  };
  image.onerror = () => {
    const message = `The image could not be decoded or loaded (${name}).`;
    status.textContent = message;
    vscode.postMessage({ type: 'imageFailed', src, message });
  };
  image.src = src;
}

window.addEventListener('message', (event: MessageEvent<ToWebviewMessage>) => {
  const message = event.data;
  if (message?.type === 'showImage') showImage(message.src, message.name);
});

vscode.postMessage({ type: 'ready' });
