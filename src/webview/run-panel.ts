// Run and Cancel, and what a run is doing: stage, step, ETA, losses, the live preview, and how it ended — with the
// buttons that help when it did not work.
import { USER_ACTION_LABELS, type RunView, type UserAction } from '../shared/webview-messages';
import type { VscodeButton, VscodeProgressBar } from './elements';

export class RunPanel {
  private readonly runButton = document.getElementById('run') as VscodeButton;
  private readonly cancelButton = document.getElementById('cancel') as VscodeButton;
  private readonly status = document.getElementById('run-status') as HTMLElement;
  private readonly progress = document.getElementById('run-progress') as VscodeProgressBar;
  private readonly losses = document.getElementById('run-losses') as HTMLElement;
  private readonly preview = document.getElementById('run-preview') as HTMLImageElement;
  private readonly actions = document.getElementById('run-actions') as HTMLElement;
  private current: RunView = { phase: 'idle' };

  constructor(private readonly handlers: { run(): void; cancel(): void; action(action: UserAction): void; showResult(file: string): void }) {
    this.runButton.addEventListener('click', () => handlers.run());
    this.cancelButton.addEventListener('click', () => handlers.cancel());
  }

  get view(): RunView {
    return this.current;
  }

  get busy(): boolean {
    return this.current.phase === 'starting' || this.current.phase === 'running' || this.current.phase === 'cancelling';
  }

  show(run: RunView): void {
    this.current = run;
    const busy = this.busy;
    this.runButton.disabled = busy;
    this.cancelButton.disabled = !busy || run.phase === 'cancelling';
    this.progress.hidden = !busy;
    this.losses.hidden = true;
    this.actions.replaceChildren();
    this.status.className = 'run-status';
    if (run.phase !== 'running') this.preview.hidden = true;
    switch (run.phase) {
      case 'idle':
        this.status.textContent = '';
        return;
      case 'starting':
        this.status.textContent = run.message;
        this.progress.indeterminate = true;
        return;
      case 'running': {
        const eta = run.etaSeconds !== undefined ? ` · about ${formatSeconds(run.etaSeconds)} left in this stage` : '';
        this.status.textContent = `${run.label}: step ${run.step} of ${run.total}${eta}${run.message ? `\n${run.message}` : ''}`;
        this.progress.indeterminate = false;
        this.progress.max = Math.max(1, run.total);
        this.progress.value = run.step;
        if (run.losses && Object.keys(run.losses).length > 0) {
          this.losses.hidden = false;
          this.losses.textContent = Object.entries(run.losses)
            .map(([name, value]) => `${name} ${value.toPrecision(4)}`)
            .join(' · ');
        }
        if (run.preview) {
          if (this.preview.src !== run.preview) this.preview.src = run.preview;
          this.preview.hidden = false;
        }
        return;
      }
      case 'cancelling':
        this.status.textContent = 'Cancelling…';
        this.progress.indeterminate = true;
        return;
      case 'cancelled':
        this.status.textContent = 'Cancelled. Nothing was written.';
        return;
      case 'finished': {
        this.status.textContent = `Done: ${run.result.file}`;
        const compare = button('Compare', () => this.handlers.showResult(run.result.file));
        this.actions.append(compare);
        return;
      }
      case 'failed':
      case 'unavailable':
        this.status.textContent = run.message;
        this.status.classList.add(run.phase === 'failed' ? 'error' : 'warning');
        for (const action of run.actions) this.actions.append(button(USER_ACTION_LABELS[action], () => this.handlers.action(action)));
        return;
    }
  }
}

export function button(label: string, onClick: () => void): HTMLButtonElement {
  const element = document.createElement('button');
  element.type = 'button';
  element.className = 'action';
  element.textContent = label;
  element.addEventListener('click', onClick);
  return element;
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
