// Typed access to the extension's settings (package.json `contributes.configuration`).
import * as vscode from 'vscode';
import {
  isDevicePreference,
  isMemoryPolicyPreference,
  isPrecisionPreference,
  type DevicePreference,
  type MemoryPolicyPreference,
  type PrecisionPreference,
} from '../shared/protocol';

export const CONFIG_SECTION = 'clipdrag';

export function devicePreference(): DevicePreference {
  const value = vscode.workspace.getConfiguration(CONFIG_SECTION).get<string>('device', 'auto');
  return isDevicePreference(value) ? value : 'auto';
}

export function precisionPreference(): PrecisionPreference {
  const value = vscode.workspace.getConfiguration(CONFIG_SECTION).get<string>('precision', 'auto');
  return isPrecisionPreference(value) ? value : 'auto';
}

export function memoryPolicyPreference(): MemoryPolicyPreference {
  const value = vscode.workspace.getConfiguration(CONFIG_SECTION).get<string>('memoryPolicy', 'auto');
  return isMemoryPolicyPreference(value) ? value : 'auto';
}

export async function setDevicePreference(device: DevicePreference): Promise<void> {
  await vscode.workspace.getConfiguration(CONFIG_SECTION).update('device', device, vscode.ConfigurationTarget.Global);
}
