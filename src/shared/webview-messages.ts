// Messages between the CLIPDrag editor's webview and the extension (one discriminated union each way).
// Imported by both sides: types and small validators only, nothing node- or DOM-specific.
//
// The extension owns the document (src/shared/editor-model.ts) and VS Code owns its undo stack: the page sends the
// edits a user makes, the extension applies them and sends every open page of that document the new state. The mask's
// pixels travel separately from the rest (`MaskUpdate`): a stroke is sent once as an append, and only loading, undo,
// redo or clearing resend the whole layer.
import type { EditMode, EditParameters, ImagePoint, PointPair, RleMask } from './edit-spec';
import { parseEditorEdit, type EditorEdit, type EditorModel } from './editor-model';
import type { MaskStroke } from './mask-raster';

/** The document as a page shows it, except the mask's pixels. */
export interface DocumentView {
  /** Increases with every change (edits, undo, redo, revert, reload). */
  revision: number;
  mode: EditMode;
  prompt: string;
  editPrompt: string;
  points: PointPair[];
  /** The parameters the user set (the others have their defaults). */
  parameters: Partial<EditParameters>;
  model?: string;
  clipModel?: string;
  /** Revision of the mask layer; a page whose mask is at another revision asks for a `reset` (`resync`). */
  maskRevision: number;
}

/** The view of a model at a revision (a copy: the page's messages must not share arrays with the model). */
export function documentView(model: EditorModel, revision: number, maskRevision: number): DocumentView {
  const view: DocumentView = {
    revision,
    mode: model.mode,
    prompt: model.prompt,
    editPrompt: model.editPrompt,
    points: model.points.map((p) => ({ handle: [p.handle[0], p.handle[1]], target: [p.target[0], p.target[1]] })),
    parameters: { ...model.parameters },
    maskRevision,
  };
  if (model.model !== undefined) view.model = model.model;
  if (model.clipModel !== undefined) view.clipModel = model.clipModel;
  return view;
}

/** The mask's starting point as a page loads it: a PNG file is named by a webview resource URI. */
export type MaskBaseView = { kind: 'none' } | { kind: 'rle'; mask: RleMask } | { kind: 'file'; path: string; src: string };

export type MaskUpdate =
  /** One stroke on top of `fromRevision`; `strokeId` is the id the page that painted it gave it. */
  | { kind: 'append'; fromRevision: number; revision: number; stroke: MaskStroke; strokeId?: string }
  /** The whole layer. */
  | { kind: 'reset'; revision: number; base: MaskBaseView; strokes: MaskStroke[] };

/** What the user can do about a message, as buttons. */
export const USER_ACTIONS = ['showLogs', 'downloadModels', 'openModelSetting', 'openClipModelSetting', 'chooseDevice', 'manageTrust', 'openSpec', 'save'] as const;
export type UserAction = (typeof USER_ACTIONS)[number];

/** The button text of each action, the same in the editor page and in VS Code's notifications. */
export const USER_ACTION_LABELS: Readonly<Record<UserAction, string>> = {
  showLogs: 'Show Logs',
  downloadModels: 'Download Models',
  openModelSetting: 'Open Model Setting',
  openClipModelSetting: 'Open CLIP Model Setting',
  chooseDevice: 'Choose Device',
  manageTrust: 'Manage Workspace Trust',
  openSpec: 'Open Spec File',
  save: 'Save Edit',
};

/** A result file next to the image (`<name>.clipdrag[-n].png`). */
export interface ResultView {
  /** File name, in the image's folder. */
  file: string;
  /** Webview resource URI of the image (with a cache-busting query). */
  src: string;
  /** Last modification time (ms since the epoch). */
  modified: number;
  /** The recipe file next to it, when present. */
  recipe?: string;
  /** The mode the recipe says the result was made in (absent without a readable recipe). */
  mode?: EditMode;
}

/** The state of an edit run, as the page shows it. */
export type RunView =
  | { phase: 'idle' }
  | { phase: 'starting'; message: string }
  | {
      phase: 'running';
      /** Pipeline stage id (`lora`, `inversion`, `drag`, `denoise`, ...) and its label. */
      stage: string;
      label: string;
      step: number;
      total: number;
      /** Estimated seconds left in this stage, when known. */
      etaSeconds?: number;
      losses?: Record<string, number>;
      /** Where the handles are now (drag stage), in image pixels. */
      handles?: ImagePoint[];
      /** A `data:` URL of the latest preview image. */
      preview?: string;
      /** A remark from the engine (a model download, a cached LoRA, ...). */
      message?: string;
    }
  | { phase: 'cancelling' }
  | { phase: 'cancelled' }
  | { phase: 'finished'; result: ResultView }
  | { phase: 'failed'; message: string; actions: UserAction[] }
  /** Running is not possible at all here (this build, Restricted Mode); nothing was changed. */
  | { phase: 'unavailable'; message: string; actions: UserAction[] };

/** Extension → webview. */
export type ToWebviewMessage =
  | {
      type: 'showImage';
      /** A webview resource URI for the image (asWebviewUri), possibly with a cache-busting query. */
      src: string;
      /** The file name, for alt text and the status line. */
      name: string;
    }
  | { type: 'document'; view: DocumentView; mask?: MaskUpdate }
  | { type: 'editRejected'; message: string }
  | { type: 'run'; run: RunView }
  | { type: 'results'; results: ResultView[] }
  /** A message for the banner above the canvas (spec problems on disk, save failures); `clearNotice` removes it. */
  | { type: 'notice'; level: 'info' | 'warning' | 'error'; message: string; actions: UserAction[] }
  | { type: 'clearNotice' }
  /** A key VS Code owns (a contributed keybinding, so users see and can change it) pressed for this editor. */
  | { type: 'shortcut'; action: KeyboundAction };

/** The page's actions that VS Code keybindings trigger (package.json `keybindings`); the page does not handle their keys itself. */
export const KEYBOUND_ACTIONS = ['run', 'tool-point', 'tool-brush', 'tool-eraser', 'tool-pan'] as const;
export type KeyboundAction = (typeof KEYBOUND_ACTIONS)[number];

/** The editor commands bound to keys in package.json, and what each does: a page action, or cancelling the run. */
export const EDITOR_KEY_COMMANDS: Readonly<Record<string, KeyboundAction | 'cancel'>> = {
  'clipdrag.editor.run': 'run',
  'clipdrag.editor.cancelRun': 'cancel',
  'clipdrag.editor.pointTool': 'tool-point',
  'clipdrag.editor.brushTool': 'tool-brush',
  'clipdrag.editor.eraserTool': 'tool-eraser',
  'clipdrag.editor.panTool': 'tool-pan',
};

export const RESULT_ACTIONS = ['open', 'reveal', 'openRecipe'] as const;
export type ResultAction = (typeof RESULT_ACTIONS)[number];
export const EDITOR_COMMANDS = ['undo', 'redo', 'save'] as const;
export type EditorCommand = (typeof EDITOR_COMMANDS)[number];

/** Webview → extension. */
export type FromWebviewMessage =
  | { type: 'ready' }
  | { type: 'imageLoaded'; src: string; width: number; height: number }
  | { type: 'imageFailed'; src: string; message: string }
  | { type: 'edit'; edit: EditorEdit; strokeId?: string }
  /** The page's mask is out of step: send the whole document. */
  | { type: 'resync' }
  | { type: 'command'; command: EditorCommand }
  | { type: 'run' }
  | { type: 'cancelRun' }
  | { type: 'result'; action: ResultAction; file: string }
  | { type: 'refreshResults' }
  /** The pixels of the PNG mask file the spec names (decoded by the page), so strokes over it can be saved. */
  | { type: 'maskFileDecoded'; path: string; mask: RleMask }
  | { type: 'userAction'; action: UserAction };

/** Messages come from a page we do not fully control at run time: check the shape before trusting it. */
export function parseFromWebviewMessage(value: unknown): FromWebviewMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const message = value as Record<string, unknown>;
  switch (message.type) {
    case 'ready':
    case 'resync':
    case 'run':
    case 'cancelRun':
    case 'refreshResults':
      return { type: message.type };
    case 'imageLoaded':
      if (typeof message.src === 'string' && isPositiveInteger(message.width) && isPositiveInteger(message.height)) {
        return { type: 'imageLoaded', src: message.src, width: message.width, height: message.height };
      }
      return undefined;
    case 'imageFailed':
      if (typeof message.src === 'string' && typeof message.message === 'string') return { type: 'imageFailed', src: message.src, message: message.message };
      return undefined;
    case 'edit': {
      const edit = parseEditorEdit(message.edit);
      if (typeof edit === 'string') return undefined;
      return typeof message.strokeId === 'string' ? { type: 'edit', edit, strokeId: message.strokeId.slice(0, 64) } : { type: 'edit', edit };
    }
    case 'command':
      return (EDITOR_COMMANDS as readonly unknown[]).includes(message.command) ? { type: 'command', command: message.command as EditorCommand } : undefined;
    case 'result':
      if ((RESULT_ACTIONS as readonly unknown[]).includes(message.action) && typeof message.file === 'string') return { type: 'result', action: message.action as ResultAction, file: message.file };
      return undefined;
    case 'maskFileDecoded': {
      const mask = message.mask as Record<string, unknown> | null | undefined;
      if (typeof message.path !== 'string' || typeof mask !== 'object' || mask === null) return undefined;
      if (!isPositiveInteger(mask.width) || !isPositiveInteger(mask.height) || !Array.isArray(mask.rle) || !mask.rle.every((run) => Number.isSafeInteger(run) && (run as number) >= 0)) return undefined;
      return { type: 'maskFileDecoded', path: message.path, mask: { width: mask.width, height: mask.height, rle: mask.rle as number[] } };
    }
    case 'userAction':
      return (USER_ACTIONS as readonly unknown[]).includes(message.action) ? { type: 'userAction', action: message.action as UserAction } : undefined;
    default:
      return undefined;
  }
}

/** Why an edit message was dropped, for the log (undefined when `parseFromWebviewMessage` accepts it). */
export function describeRejectedEdit(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || (value as { type?: unknown }).type !== 'edit') return undefined;
  const edit = parseEditorEdit((value as { edit?: unknown }).edit);
  return typeof edit === 'string' ? edit : undefined;
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}
