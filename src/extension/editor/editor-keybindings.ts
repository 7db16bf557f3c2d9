// The editor's keys that VS Code owns: commands bound in package.json (`keybindings`, when the CLIPDrag editor is
// the active editor), so users see and change them in Keyboard Shortcuts. Each acts on the active CLIPDrag editor:
// Run and the tool switches are forwarded to its page, Cancel goes to its run directly. The context key
// `clipdrag.runActive` says whether the active editor's edit is running (Escape cancels only then).
import * as vscode from 'vscode';
import { EDITOR_KEY_COMMANDS } from '../../shared/webview-messages';
import type { EditorPanel } from './editor-panel';

export const RUN_ACTIVE_CONTEXT = 'clipdrag.runActive';

/** The CLIPDrag editor pages that are open, which of them is the active editor, and the commands acting on it. */
export class EditorKeybindings implements vscode.Disposable {
  private readonly panels = new Set<EditorPanel>();
  private readonly disposables: vscode.Disposable[] = [];
  private runActive: boolean | undefined;

  constructor() {
    for (const [command, action] of Object.entries(EDITOR_KEY_COMMANDS)) {
      this.disposables.push(
        vscode.commands.registerCommand(command, () => {
          const panel = this.activePanel();
          if (!panel) return;
          if (action === 'cancel') panel.cancelRun();
          else panel.shortcut(action);
        }),
      );
    }
  }

  /** Tracks a page until it closes; call `update` when it becomes active or its run changes. */
  add(panel: EditorPanel): vscode.Disposable {
    this.panels.add(panel);
    this.update();
    return new vscode.Disposable(() => {
      this.panels.delete(panel);
      this.update();
    });
  }

  activePanel(): EditorPanel | undefined {
    for (const panel of this.panels) if (panel.active) return panel;
    return undefined;
  }

  update(): void {
    const running = this.activePanel()?.running ?? false;
    if (running === this.runActive) return;
    this.runActive = running;
    void vscode.commands.executeCommand('setContext', RUN_ACTIVE_CONTEXT, running);
  }

  dispose(): void {
    this.disposables.forEach((d) => d.dispose());
    this.disposables.length = 0;
  }
}
