// The buttons that come with the editor's messages (in its page and in notifications): each names a way out of the
// problem — the log, the model download, the model settings, the device choice, workspace trust, the spec file, saving.
import * as vscode from 'vscode';
import { USER_ACTION_LABELS, type UserAction } from '../../shared/webview-messages';

/** Performs an action; `specUri` is the spec of the editor the action came from. */
export async function performUserAction(action: UserAction, specUri?: vscode.Uri): Promise<void> {
  switch (action) {
    case 'showLogs':
      await vscode.commands.executeCommand('clipdrag.showLogs');
      return;
    case 'downloadModels':
      await vscode.commands.executeCommand('clipdrag.downloadModels');
      return;
    case 'openModelSetting':
      await vscode.commands.executeCommand('workbench.action.openSettings', 'clipdrag.model');
      return;
    case 'openClipModelSetting':
      await vscode.commands.executeCommand('workbench.action.openSettings', 'clipdrag.clipModel');
      return;
    case 'chooseDevice':
      await vscode.commands.executeCommand('clipdrag.chooseDevice');
      return;
    case 'manageTrust':
      await vscode.commands.executeCommand('workbench.trust.manage');
      return;
    case 'openSpec':
      // As JSON text, beside the editor: the file is the place to fix what the editor could not read.
      if (specUri) await vscode.commands.executeCommand('vscode.openWith', specUri, 'default', vscode.ViewColumn.Beside);
      return;
    case 'save':
      await vscode.commands.executeCommand('workbench.action.files.save');
      return;
  }
}

/** Shows a notification with the actions as buttons and performs the one the user picks. */
export function notifyWithActions(level: 'info' | 'warning' | 'error', message: string, actions: readonly UserAction[], specUri?: vscode.Uri): void {
  const show = level === 'error' ? vscode.window.showErrorMessage : level === 'warning' ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
  void show(message, ...actions.map((action) => USER_ACTION_LABELS[action])).then((picked) => {
    const action = actions.find((a) => USER_ACTION_LABELS[a] === picked);
    if (action) void performUserAction(action, specUri);
  });
}
