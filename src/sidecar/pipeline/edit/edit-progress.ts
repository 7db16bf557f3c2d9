/** Progress reports of an edit, with a per-stage estimate of the time left (mean step time × steps left). */
import type { EditProgress, EditStage } from '../../../shared/protocol';

export class EditProgressReporter {
  private stageStarted = performance.now();
  private current: EditStage | null = null;

  constructor(private readonly emit: ((progress: EditProgress) => void) | undefined) {}

  /** Announces a stage (step 0 of `total`). */
  start(stage: EditStage, total: number, message?: string): void {
    this.current = stage;
    this.stageStarted = performance.now();
    this.send({ stage, step: 0, total, ...(message ? { message } : {}) });
  }

  /** Reports step `step` of the current stage. */
  step(stage: EditStage, step: number, total: number, extra: Omit<EditProgress, 'stage' | 'step' | 'total' | 'etaSeconds'> = {}): void {
    if (this.current !== stage) this.start(stage, total);
    const elapsed = (performance.now() - this.stageStarted) / 1000;
    const etaSeconds = step > 0 ? Math.max(0, (elapsed / step) * (total - step)) : undefined;
    this.send({ stage, step, total, ...(etaSeconds !== undefined ? { etaSeconds: Math.round(etaSeconds * 10) / 10 } : {}), ...extra });
  }

  /** A remark within the current stage. */
  note(stage: EditStage, message: string): void {
    this.send({ stage, step: 0, total: 0, message });
  }

  private send(progress: EditProgress): void {
    try {
      this.emit?.(progress);
    } catch {
      // A listener's failure must not break the edit.
    }
  }
}
