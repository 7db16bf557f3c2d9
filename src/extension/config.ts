// Typed access to the extension's settings (package.json `contributes.configuration`).
import * as vscode from 'vscode';
import { isDevicePreference, type DevicePreference } from '../shared/protocol';

export const CONFIG_SECTION = 'clipdrag';

export function devicePreference(): DevicePreference {
  const value = vscode.workspace.getConfiguration(CONFIG_SECTION).get<string>('device', 'auto');
  return isDevicePreference(value) ? value : 'auto';
}

export async function setDevicePreference(device: DevicePreference): Promise<void> {
  await vscode.workspace.getConfiguration(CONFIG_SECTION).update('device', device, vscode.ConfigurationTarget.Global);
}
