// The `clipdrag.defaults.*` settings a user changed, as the parameters a new edit starts with. Only values the user
// set explicitly are used (the settings' own defaults equal the spec's), and only valid ones: a new spec then holds
// them explicitly, so the file means the same wherever it is run.
import * as vscode from 'vscode';
import { parametersProblem } from '../../shared/editor-model';
import { DEFAULTS_SETTINGS_PREFIX } from '../../shared/edit-parameter-settings';
import { EDIT_PARAMETER_NAMES, type EditParameters } from '../../shared/edit-parameters';

export function userParameterDefaults(log?: vscode.LogOutputChannel): Partial<EditParameters> {
  const configuration = vscode.workspace.getConfiguration();
  const parameters: Record<string, unknown> = {};
  for (const name of EDIT_PARAMETER_NAMES) {
    const key = `${DEFAULTS_SETTINGS_PREFIX}${name}`;
    const inspected = configuration.inspect(key);
    const value = inspected?.workspaceFolderValue ?? inspected?.workspaceValue ?? inspected?.globalValue;
    if (value === undefined) continue;
    const problem = parametersProblem({ [name]: value } as Partial<EditParameters>, name);
    if (problem) log?.warn(`editor: ignoring the setting ${key} = ${JSON.stringify(value)}: ${problem}`);
    else parameters[name] = value;
  }
  return parameters as Partial<EditParameters>;
}
