// Messages between the CLIPDrag editor's webview and the extension (one discriminated union each way).
// Imported by both sides: types and small validators only, nothing node- or DOM-specific.

/** Extension → webview. */
export type ToWebviewMessage = {
  type: 'showImage';
  /** A webview resource URI for the image (asWebviewUri), possibly with a cache-busting query. */
  src: string;
  /** The file name, for alt text and the status line. */
  name: string;
};

/** Webview → extension. */
export type FromWebviewMessage =
  | { type: 'ready' }
  | { type: 'imageLoaded'; src: string; width: number; height: number }
  | { type: 'imageFailed'; src: string; message: string };

/** Messages come from a page we do not fully control at run time: check the shape before trusting it. */
export function parseFromWebviewMessage(value: unknown): FromWebviewMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const message = value as Record<string, unknown>;
  switch (message.type) {
    case 'ready':
      return { type: 'ready' };
    case 'imageLoaded':
      if (typeof message.src === 'string' && isPositiveInteger(message.width) && isPositiveInteger(message.height)) {
        return { type: 'imageLoaded', src: message.src, width: message.width, height: message.height };
      }
      return undefined;
    case 'imageFailed':
      if (typeof message.src === 'string' && typeof message.message === 'string') return { type: 'imageFailed', src: message.src, message: message.message };
      return undefined;
    default:
      return undefined;
  }
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}
