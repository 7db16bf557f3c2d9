// How the editor runs an edit in the engine process: the sidecar's `edit/run` request, with its `$/progress` reports
// passed on as they come and VS Code's cancellation sent as `$/cancelRequest`. Failures become `EditRunError`s that
// carry what the user can do about them (download the models, fix the spec, look at the log).
import * as vscode from 'vscode';
import type { EditSpec } from '../../shared/edit-spec';
import { EditRunRequestType, type EditProgress, type EditRunParams, type EditSettings } from '../../shared/protocol';
import type { UserAction } from '../../shared/webview-messages';
import { CONFIG_SECTION, memoryPolicyPreference, precisionPreference } from '../config';
import type { SidecarClient } from '../sidecar/sidecar-client';
import { describeRunFailure, type RunModels } from './run-failure';

export interface EditRunRequest {
  imageUri: vscode.Uri;
  /** The spec as the editor holds it now (mask inline, or a PNG next to the image), validated for running. */
  spec: EditSpec;
}

/** One progress report of a running edit, as the sidecar sends it. */
export type EditRunProgress = EditProgress;

export interface EditRunResult {
  resultUri: vscode.Uri;
  recipeUri: vscode.Uri;
  iterations: number;
  reachedTargets: boolean;
  executionProvider: string;
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

export class EditRunCancelled extends Error {
  override readonly name = 'EditRunCancelled';
}

export interface EditRunBackend {
  /** Resolves with the written result; rejects with `EditRunCancelled` after a cancellation, `EditRunError` otherwise. */
  run(request: EditRunRequest, onProgress: (progress: EditRunProgress) => void, token: vscode.CancellationToken): Promise<EditRunResult>;
}

export type EditRunAvailability = { available: true; backend: EditRunBackend } | { available: false; reason: string };

export function editRunAvailability(sidecar: SidecarClient): EditRunAvailability {
  return { available: true, backend: new SidecarEditRunBackend(sidecar) };
}

/** The model settings the user set (empty means the engine's default). Read at run time, so changes apply at once. */
export function editSettings(): EditSettings {
  const config = vscode.workspace.getConfiguration(CONFIG_SECTION);
  const text = (key: string) => config.get<string>(key, '').trim();
  const settings: EditSettings = { precision: precisionPreference(), memoryPolicy: memoryPolicyPreference() };
  if (text('model')) settings.model = text('model');
  if (text('modelConfig')) settings.modelConfig = text('modelConfig');
  if (text('clipModel')) settings.clipModel = text('clipModel');
  if (text('cacheDirectory')) settings.hubCacheDirectory = text('cacheDirectory');
  return settings;
}

class SidecarEditRunBackend implements EditRunBackend {
  constructor(private readonly sidecar: SidecarClient) {}

  async run(request: EditRunRequest, onProgress: (progress: EditRunProgress) => void, token: vscode.CancellationToken): Promise<EditRunResult> {
    const params: EditRunParams = { imagePath: request.imageUri.fsPath, spec: request.spec, settings: editSettings() };
    try {
      const result = await this.sidecar.sendRequestWithProgress(EditRunRequestType, params, (progress: EditProgress) => onProgress(progress), token);
      return {
        resultUri: vscode.Uri.file(result.imagePath),
        recipeUri: vscode.Uri.file(result.recipePath),
        iterations: result.iterations,
        reachedTargets: result.reachedTargets,
        executionProvider: result.executionProvider,
      };
    } catch (error) {
      throw runError(error, { model: request.spec.model ?? params.settings?.model, clipModel: request.spec.clipModel ?? params.settings?.clipModel });
    }
  }
}

/** A failed `edit/run` as an error with the actions that help, by the sidecar's error code. */
export function runError(error: unknown, models: RunModels = {}): Error {
  const failure = describeRunFailure(error, models);
  return failure.cancelled ? new EditRunCancelled(failure.message) : new EditRunError(failure.message, failure.actions);
}

/** Stage ids as words for the progress line. */
export function stageLabel(stage: string): string {
  const labels: Record<string, string> = {
    decode: 'Reading the image',
    load: 'Loading models',
    lora: 'Fine-tuning LoRA',
    encode: 'Encoding the image',
    inversion: 'Inverting',
    drag: 'Dragging',
    denoise: 'Denoising',
    write: 'Writing the result',
  };
  return labels[stage] ?? stage.charAt(0).toUpperCase() + stage.slice(1);
}
