// The parameters form, generated from the spec module's definitions: each field shows its default as placeholder,
// its range and meaning, and the spec module's own message when a value is not accepted (nothing is sent then).
// An empty field means "the default".
import { describeRange, EDIT_PARAMETER_DEFINITIONS, EDIT_PARAMETER_NAMES, type EditParameterName, type EnumParameterDefinition, type NumericParameterDefinition } from '../shared/edit-parameters';
import { parametersProblem, type EditorEdit } from '../shared/editor-model';
import type { DocumentView } from '../shared/webview-messages';
import type { VscodeSingleSelect, VscodeTextfield } from './elements';

interface Field {
  name: EditParameterName;
  input: VscodeTextfield | VscodeSingleSelect;
  error: HTMLElement;
  reset: HTMLButtonElement;
}

export class ParameterPanel {
  private readonly fields: Field[] = [];
  private view: DocumentView | undefined;

  constructor(
    container: HTMLElement,
    private readonly send: (edit: EditorEdit) => void,
  ) {
    for (const name of EDIT_PARAMETER_NAMES) this.fields.push(this.createField(container, name));
  }

  show(view: DocumentView): void {
    this.view = view;
    for (const field of this.fields) {
      const value = view.parameters[field.name];
      const text = value === undefined ? (field.input.tagName.toLowerCase() === 'vscode-single-select' ? String(EDIT_PARAMETER_DEFINITIONS[field.name].default) : '') : String(value);
      const editing = field.input.matches(':focus-within') || !field.error.hidden;
      if (!editing && field.input.value !== text) field.input.value = text;
      field.reset.disabled = value === undefined;
    }
  }

  /** A parameter edit the extension refused: show its message at the field. */
  showRejected(message: string): boolean {
    const field = this.fields.find((f) => message.startsWith(`${f.name}:`));
    if (!field) return false;
    this.setError(field, message.slice(field.name.length + 1).trim());
    return true;
  }

  private createField(container: HTMLElement, name: EditParameterName): Field {
    const definition = EDIT_PARAMETER_DEFINITIONS[name] as NumericParameterDefinition | EnumParameterDefinition;
    const id = `parameter-${name}`;
    const row = element('div', 'parameter');
    const label = element('vscode-label');
    label.setAttribute('for', id);
    label.textContent = humanName(name);
    const line = element('div', 'parameter-input');
    let input: VscodeTextfield | VscodeSingleSelect;
    if (definition.kind === 'enum') {
      const select = element('vscode-single-select') as VscodeSingleSelect;
      for (const value of definition.values) {
        const option = element('vscode-option');
        option.setAttribute('value', value);
        option.textContent = value === definition.default ? `${value} (default)` : value;
        select.append(option);
      }
      input = select;
    } else {
      const textfield = element('vscode-textfield') as VscodeTextfield;
      textfield.setAttribute('type', 'number');
      textfield.setAttribute('placeholder', String(definition.default));
      textfield.setAttribute('min', String(definition.min));
      textfield.setAttribute('max', String(definition.max));
      textfield.setAttribute('step', definition.kind === 'integer' ? '1' : 'any');
      input = textfield;
    }
    input.id = id;
    input.setAttribute('aria-label', `${humanName(name)}: ${definition.description}`);
    const help = element('div', 'parameter-help');
    help.id = `${id}-help`;
    help.textContent = `${definition.description}; ${definition.kind === 'enum' ? `one of ${definition.values.join(', ')}` : describeRange(definition)}; default ${definition.default}`;
    input.setAttribute('aria-describedby', help.id);
    const reset = element('button', 'reset') as HTMLButtonElement;
    reset.type = 'button';
    reset.textContent = '↺';
    reset.title = `Back to the default (${definition.default})`;
    reset.setAttribute('aria-label', `Reset ${humanName(name)} to its default, ${definition.default}`);
    const error = element('div', 'parameter-error');
    error.setAttribute('role', 'alert');
    error.hidden = true;
    line.append(input, reset);
    row.append(label, line, help, error);
    container.append(row);
    const field: Field = { name, input, error, reset };
    input.addEventListener('change', () => this.commit(field));
    reset.addEventListener('click', () => {
      this.clearError(field);
      this.send({ kind: 'setParameter', name, value: undefined });
    });
    return field;
  }

  private commit(field: Field): void {
    if (!this.view) return;
    const definition = EDIT_PARAMETER_DEFINITIONS[field.name];
    const text = field.input.value.trim();
    let value: number | string | undefined;
    if (text === '') value = undefined;
    else if (definition.kind === 'enum') value = text;
    else {
      value = Number(text);
      if (!Number.isFinite(value)) return this.setError(field, `"${text}" is not a number; expected ${describeRange(definition)}`);
    }
    if (value === this.view.parameters[field.name]) return this.clearError(field);
    if (value !== undefined) {
      const problem = parametersProblem({ ...this.view.parameters, [field.name]: value }, field.name);
      if (problem) return this.setError(field, problem.replace(/^[A-Za-z]+: /, ''));
    }
    this.clearError(field);
    this.send({ kind: 'setParameter', name: field.name, value });
  }

  private setError(field: Field, message: string): void {
    field.error.textContent = message;
    field.error.hidden = false;
    if ('invalid' in field.input) field.input.invalid = true;
  }

  private clearError(field: Field): void {
    field.error.textContent = '';
    field.error.hidden = true;
    if ('invalid' in field.input) field.input.invalid = false;
  }
}

/** `latentLearningRate` → "Latent learning rate". */
export function humanName(name: string): string {
  const words = name.replace(/([A-Z])/g, ' $1').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function element(tag: string, className?: string): HTMLElement {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}
