// The editor's keyboard shortcuts: one table that both handles keys and lists them in the page. Undo, redo and save
// are VS Code's own keys (Ctrl/Cmd+Z, Ctrl/Cmd+Shift+Z, Ctrl/Cmd+S), which reach the editor through VS Code. So do
// Run and the tool keys: they are keybindings contributed in package.json (users see and change them in Keyboard
// Shortcuts), which VS Code turns into a `shortcut` message; the page lists them but does not handle their keys.
import { KEYBOUND_ACTIONS, type KeyboundAction } from '../shared/webview-messages';

export type ShortcutAction =
  | 'tool-point'
  | 'tool-brush'
  | 'tool-eraser'
  | 'tool-pan'
  | 'brush-smaller'
  | 'brush-larger'
  | 'toggle-mask'
  | 'clear-mask'
  | 'zoom-in'
  | 'zoom-out'
  | 'zoom-fit'
  | 'zoom-actual'
  | 'add-pair'
  | 'select-next'
  | 'select-previous'
  | 'nudge-left'
  | 'nudge-right'
  | 'nudge-up'
  | 'nudge-down'
  | 'toggle-end'
  | 'delete-selected'
  | 'clear-all'
  | 'escape'
  | 'run'
  | 'toggle-compare';

export interface Shortcut {
  action: ShortcutAction;
  /** As shown to the user. */
  keys: string;
  description: string;
}

interface KeyBinding {
  key: string;
  ctrl?: boolean;
  shift?: boolean | 'any';
}

const BINDINGS: readonly (Shortcut & { bindings: KeyBinding[] })[] = [
  { action: 'tool-point', keys: 'P', description: 'Points tool: click a handle, then its target; drag a point to move it', bindings: [{ key: 'p' }] },
  { action: 'tool-brush', keys: 'B', description: 'Mask brush', bindings: [{ key: 'b' }] },
  { action: 'tool-eraser', keys: 'E', description: 'Mask eraser', bindings: [{ key: 'e' }] },
  { action: 'tool-pan', keys: 'H (or hold Space)', description: 'Pan tool (also: middle mouse button)', bindings: [{ key: 'h' }] },
  { action: 'brush-smaller', keys: '[', description: 'Smaller brush', bindings: [{ key: '[' }] },
  { action: 'brush-larger', keys: ']', description: 'Larger brush', bindings: [{ key: ']' }] },
  { action: 'toggle-mask', keys: 'M', description: 'Show or hide the mask', bindings: [{ key: 'm' }] },
  { action: 'clear-mask', keys: 'Shift+M', description: 'Remove the mask (undoable)', bindings: [{ key: 'm', shift: true }] },
  { action: 'zoom-in', keys: '+', description: 'Zoom in (also: mouse wheel, pinch)', bindings: [{ key: '+', shift: 'any' }, { key: '=', shift: 'any' }] },
  { action: 'zoom-out', keys: '-', description: 'Zoom out', bindings: [{ key: '-' }] },
  { action: 'zoom-fit', keys: 'F or 0', description: 'Fit the image in the view', bindings: [{ key: 'f' }, { key: '0' }] },
  { action: 'zoom-actual', keys: '1', description: 'Actual size (100%)', bindings: [{ key: '1' }] },
  { action: 'add-pair', keys: 'A', description: 'Add a point pair at the centre of the view (then move it with the arrow keys)', bindings: [{ key: 'a' }] },
  { action: 'select-next', keys: 'N / Shift+N', description: 'Select the next / previous point pair', bindings: [{ key: 'n' }] },
  { action: 'select-previous', keys: '', description: '', bindings: [{ key: 'n', shift: true }] },
  { action: 'toggle-end', keys: 'T', description: 'Switch the selection between handle and target', bindings: [{ key: 't' }] },
  { action: 'nudge-left', keys: 'Arrow keys', description: 'Move the selected point 1 pixel (with Shift: 10)', bindings: [{ key: 'arrowleft', shift: 'any' }] },
  { action: 'nudge-right', keys: '', description: '', bindings: [{ key: 'arrowright', shift: 'any' }] },
  { action: 'nudge-up', keys: '', description: '', bindings: [{ key: 'arrowup', shift: 'any' }] },
  { action: 'nudge-down', keys: '', description: '', bindings: [{ key: 'arrowdown', shift: 'any' }] },
  { action: 'delete-selected', keys: 'Delete / Backspace', description: 'Delete the selected point pair', bindings: [{ key: 'delete' }, { key: 'backspace' }] },
  { action: 'clear-all', keys: 'Shift+Delete', description: 'Remove every point pair and the mask (undoable)', bindings: [{ key: 'delete', shift: true }, { key: 'backspace', shift: true }] },
  { action: 'escape', keys: 'Esc', description: 'Drop the unfinished pair or clear the selection', bindings: [{ key: 'escape' }] },
  { action: 'run', keys: 'Ctrl+Enter', description: 'Run the edit (Cmd+Enter on macOS; Escape cancels a run)', bindings: [{ key: 'enter', ctrl: true }] },
  { action: 'toggle-compare', keys: 'C', description: 'Switch between editing and comparing with a result', bindings: [{ key: 'c' }] },
];

/** The shortcuts to list in the page (continuation rows folded into their first row). */
export const SHORTCUTS: readonly Shortcut[] = [
  ...BINDINGS.filter((b) => b.keys !== '').map(({ action, keys, description }) => ({ action, keys, description })),
  { action: 'escape', keys: 'Ctrl+Z / Ctrl+Shift+Z / Ctrl+S', description: 'Undo / redo / save (VS Code; Cmd on macOS)' },
];

/** The parts of a keyboard event a shortcut depends on. */
export interface KeyPress {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
}

const isKeybound = (action: ShortcutAction): action is KeyboundAction => (KEYBOUND_ACTIONS as readonly string[]).includes(action);

/** The page's own action for a key press; undefined for keys VS Code handles (see the top of this file). */
export function shortcutFor(event: KeyPress): ShortcutAction | undefined {
  if (event.altKey) return undefined;
  const key = event.key.toLowerCase();
  const ctrl = event.ctrlKey || event.metaKey;
  for (const binding of BINDINGS) {
    if (isKeybound(binding.action)) continue;
    for (const b of binding.bindings) {
      if (b.key !== key || Boolean(b.ctrl) !== ctrl) continue;
      if (b.shift !== 'any' && Boolean(b.shift) !== event.shiftKey) continue;
      return binding.action;
    }
  }
  return undefined;
}
