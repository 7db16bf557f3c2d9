// What the extension's `activate` returns: other extensions and the integration tests use this
// instead of reaching into internals.
import type { ImageEditorProvider } from './editor/image-editor-provider';
import type { SidecarClient } from './sidecar/sidecar-client';

export interface ClipdragApi {
  /** The engine process client (start, requests, restart; pid and initialize result). */
  readonly sidecar: SidecarClient;
  /** The `clipdrag.editor` custom editor (open documents and what their webviews show). */
  readonly editor: ImageEditorProvider;
}
