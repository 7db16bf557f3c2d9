// The page's side of the messaging with the extension: typed posting, and the small per-page state VS Code keeps
// across reloads of the page (tool, brush size, mask visibility).
import type { FromWebviewMessage } from '../shared/webview-messages';

interface VsCodeApi {
  postMessage(message: FromWebviewMessage): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

export interface PageState {
  tool: 'point' | 'brush' | 'eraser' | 'pan';
  brushRadius: number;
  brushSizeChosen: boolean;
  maskVisible: boolean;
}

const api = acquireVsCodeApi();

export function post(message: FromWebviewMessage): void {
  api.postMessage(message);
}

export function loadPageState(): Partial<PageState> {
  const state = api.getState();
  return typeof state === 'object' && state !== null ? (state as Partial<PageState>) : {};
}

export function savePageState(state: PageState): void {
  api.setState(state);
}
