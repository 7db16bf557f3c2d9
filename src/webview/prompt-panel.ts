// The prompt fields and the mode. Typing is sent as one edit per pause (or when the field loses focus), so undo
// steps are whole phrases rather than single keys; the document's text is shown unless the user is typing.
import type { EditMode } from '../shared/edit-spec';
import type { EditorEdit, PromptField } from '../shared/editor-model';
import type { DocumentView } from '../shared/webview-messages';
import type { VscodeSingleSelect, VscodeTextarea } from './elements';

const TYPING_PAUSE_MS = 700;

export class PromptPanel {
  private readonly fields: Record<PromptField, VscodeTextarea>;
  private readonly mode: VscodeSingleSelect;
  private readonly timers = new Map<PromptField, ReturnType<typeof setTimeout>>();
  /** The last text sent per field: a document update carrying it is our own echo. */
  private readonly sent = new Map<PromptField, string>();
  private view: DocumentView | undefined;

  constructor(private readonly send: (edit: EditorEdit) => void) {
    this.fields = {
      prompt: document.getElementById('prompt') as VscodeTextarea,
      editPrompt: document.getElementById('edit-prompt') as VscodeTextarea,
    };
    this.mode = document.getElementById('mode') as VscodeSingleSelect;
    for (const field of ['prompt', 'editPrompt'] as const) {
      const element = this.fields[field];
      element.addEventListener('input', () => this.schedule(field));
      element.addEventListener('change', () => this.flush(field));
      element.addEventListener('focusout', () => this.flush(field));
    }
    this.mode.addEventListener('change', () => {
      const mode = this.mode.value as EditMode;
      if (this.view && mode !== this.view.mode) this.send({ kind: 'setMode', mode });
    });
  }

  show(view: DocumentView): void {
    this.view = view;
    for (const field of ['prompt', 'editPrompt'] as const) {
      const element = this.fields[field];
      const text = view[field];
      const typing = this.timers.has(field) || (element.matches(':focus-within') && this.sent.get(field) === text);
      if (!typing && element.value !== text) element.value = text;
    }
    if (this.mode.value !== view.mode) this.mode.value = view.mode;
    // The drag-only modes have no target prompt.
    this.fields.editPrompt.disabled = view.mode === 'drag' || view.mode === 'freedrag';
  }

  /** Sends whatever is typed and not yet sent (before a run, for one). */
  flushAll(): void {
    this.flush('prompt');
    this.flush('editPrompt');
  }

  private schedule(field: PromptField): void {
    clearTimeout(this.timers.get(field));
    this.timers.set(
      field,
      setTimeout(() => this.flush(field), TYPING_PAUSE_MS),
    );
  }

  private flush(field: PromptField): void {
    clearTimeout(this.timers.get(field));
    this.timers.delete(field);
    const text = this.fields[field].value;
    if (!this.view || text === this.view[field]) return;
    this.sent.set(field, text);
    this.send({ kind: 'setPrompt', field, text });
  }
}
