// The extension's side of the conversation for the page tests, on the real shared document model: it applies the
// page's edits with `applyEdit`, keeps revisions, and answers as the extension does (a `document` message with the
// view, a mask `append` for strokes, a `reset` otherwise). Undo puts the previous model back, as VS Code's undo does.
import { applyEdit, emptyModel, type EditorEdit, type EditorModel, type MaskStroke } from '../../src/shared/editor-model';
import { documentView, type FromWebviewMessage, type MaskUpdate } from '../../src/shared/webview-messages';
import type { EditorPage } from './harness';

export class TestHost {
  model: EditorModel = emptyModel();
  revision = 0;
  maskRevision = 0;
  imageSize: { width: number; height: number } | undefined;
  /** The edits applied, in order. */
  readonly edits: EditorEdit[] = [];
  readonly rejected: string[] = [];
  private readonly history: EditorModel[] = [];

  constructor(
    private readonly page: EditorPage,
    private readonly image: { src: string; name: string },
  ) {
    page.onMessage((message) => void this.handle(message));
  }

  private async handle(message: FromWebviewMessage): Promise<void> {
    switch (message.type) {
      case 'ready':
        await this.sendDocument(this.reset());
        await this.page.send({ type: 'showImage', ...this.image });
        return;
      case 'imageLoaded':
        this.imageSize = { width: message.width, height: message.height };
        return;
      case 'resync':
        await this.sendDocument(this.reset());
        return;
      case 'edit': {
        const outcome = applyEdit(this.model, message.edit, this.imageSize);
        if (outcome.kind === 'rejected') {
          this.rejected.push(outcome.message);
          await this.page.send({ type: 'editRejected', message: outcome.message });
          return;
        }
        if (outcome.kind === 'unchanged') return;
        this.edits.push(message.edit);
        this.history.push(this.model);
        const maskChanged = outcome.model.mask !== this.model.mask;
        this.model = outcome.model;
        this.revision++;
        if (message.edit.kind === 'maskStroke') {
          const update: MaskUpdate = { kind: 'append', fromRevision: this.maskRevision, revision: ++this.maskRevision, stroke: outcome.model.mask.strokes.at(-1) as MaskStroke };
          if (message.strokeId) update.strokeId = message.strokeId;
          await this.sendDocument(update);
        } else {
          await this.sendDocument(maskChanged ? this.reset(true) : undefined);
        }
        return;
      }
      default:
        return;
    }
  }

  /** What VS Code's Undo does: the previous model comes back. */
  async undo(): Promise<void> {
    const previous = this.history.pop();
    if (!previous) return;
    const maskChanged = previous.mask !== this.model.mask;
    this.model = previous;
    this.revision++;
    await this.sendDocument(maskChanged ? this.reset(true) : undefined);
  }

  private reset(bump = false): MaskUpdate {
    if (bump) this.maskRevision++;
    const base = this.model.mask.base;
    return { kind: 'reset', revision: this.maskRevision, base: base.kind === 'file' ? { kind: 'none' } : base, strokes: [...this.model.mask.strokes] };
  }

  private async sendDocument(mask: MaskUpdate | undefined): Promise<void> {
    const view = documentView(this.model, this.revision, this.maskRevision);
    await this.page.send(mask ? { type: 'document', view, mask } : { type: 'document', view });
  }
}
