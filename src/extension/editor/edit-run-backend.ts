// How the editor runs an edit in the engine process. The run controller talks to an `EditRunBackend`; the backend
// speaks the sidecar's `edit/run` request (progress notifications, `$/cancelRequest` on cancel). That request belongs
// to the pipeline and is not declared in src/shared/protocol.ts in this build, so `editRunAvailability` reports that
// editing is unavailable — the editor says so instead of pretending to run. Wiring the request in is the one change
// needed here once it exists: build a backend from it in `editRunAvailability`.
import type * as vscode from 'vscode';
import type { EditSpec, ImagePoint } from '../../shared/edit-spec';
import type { UserAction } from '../../shared/webview-messages';
import type { SidecarClient } from '../sidecar/sidecar-client';

export interface EditRunRequest {
  imageUri: vscode.Uri;
  /** The spec as the editor holds it now (mask inline), validated for running. */
  spec: EditSpec;
}

/** One progress report of a running edit. */
export interface EditRunProgress {
  /** Stage id (`lora`, `inversion`, `drag`, `denoise`, ...). */
  stage: string;
  step: number;
  total: number;
  etaSeconds?: number;
  losses?: Record<string, number>;
  /** Current handle positions in image pixels (drag stage). */
  handles?: ImagePoint[];
  /** A preview image: PNG bytes, base64-encoded. */
  previewPngBase64?: string;
}

export interface EditRunResult {
  resultUri: vscode.Uri;
  recipeUri?: vscode.Uri;
}

/** An error of a run, with what the user can do about it. */
export class EditRunError extends Error {
  override readonly name = 'EditRunError';
  constructor(
    message: string,
    readonly actions: UserAction[],
  ) {
    super(message);
  }
}

export interface EditRunBackend {
  /** Resolves with the written result; rejects with `EditRunCancelled` after a cancellation. */
  run(request: EditRunRequest, onProgress: (progress: EditRunProgress) => void, token: vscode.CancellationToken): Promise<EditRunResult>;
}

export class EditRunCancelled extends Error {
  override readonly name = 'EditRunCancelled';
}

export type EditRunAvailability = { available: true; backend: EditRunBackend } | { available: false; reason: string };

export function editRunAvailability(_sidecar: SidecarClient, version: string): EditRunAvailability {
  return {
    available: false,
    reason:
      `Editing is not available in this build (CLIPDrag ${version}): its engine cannot run edits yet. ` +
      'Nothing was run and no file was written. Your points, mask and prompts stay in the editor; save them to run the edit with a version that can.',
  };
}

/** Stage ids as words for the progress line. */
export function stageLabel(stage: string): string {
  const labels: Record<string, string> = {
    load: 'Loading models',
    decode: 'Reading the image',
    encode: 'Encoding the image',
    lora: 'Fine-tuning LoRA',
    inversion: 'Inverting',
    drag: 'Dragging',
    denoise: 'Denoising',
    write: 'Writing the result',
  };
  return labels[stage] ?? stage.charAt(0).toUpperCase() + stage.slice(1);
}
