// Progress of a model request, as plain JSON-able objects the sidecar can forward as RPC notifications.

/** `download`: bytes from the hub. `hash`: hashing a local folder's files. `verify`: re-hashing cached files. */
export type TransferPhase = 'download' | 'hash' | 'verify';

export type ModelStoreEvent =
  | {
      type: 'resolved';
      /** `owner/name@revision`, or the folder path. */
      model: string;
      commit: string | null;
      folder: string;
      fileCount: number;
      /** Size of all files the model uses. */
      totalBytes: number;
      /** Bytes still to fetch (0 when everything is cached). */
      downloadBytes: number;
      /** `hub`: checked with the hub; `cache`: from the cache without the hub; `local`: a plain folder. */
      origin: 'hub' | 'cache' | 'local';
    }
  | { type: 'file-start'; phase: TransferPhase; file: string; size: number; /** Bytes kept from an interrupted download. */ resumeFrom: number }
  | {
      type: 'progress';
      phase: TransferPhase;
      file: string;
      fileBytes: number;
      fileSize: number;
      /** Across all files of this phase: bytes done and the total to do. */
      overallBytes: number;
      overallTotal: number;
    }
  | { type: 'file-done'; phase: TransferPhase; file: string; size: number; sha256: string }
  | { type: 'note'; message: string };

export type ModelStoreListener = (event: ModelStoreEvent) => void;

/** Tracks overall bytes of one phase and rate-limits `progress` events (always sends a file's first and last). */
export class ProgressReporter {
  private doneBeforeCurrentFile = 0;
  private lastSent = 0;

  constructor(
    private readonly listener: ModelStoreListener | undefined,
    private readonly phase: TransferPhase,
    private readonly overallTotal: number,
    private readonly intervalMs: number,
  ) {}

  emit(event: ModelStoreEvent): void {
    this.listener?.(event);
  }

  startFile(file: string, size: number, resumeFrom: number): void {
    this.lastSent = 0;
    this.emit({ type: 'file-start', phase: this.phase, file, size, resumeFrom });
  }

  fileBytes(file: string, fileBytes: number, fileSize: number): void {
    const now = Date.now();
    if (fileBytes < fileSize && now - this.lastSent < this.intervalMs) return;
    this.lastSent = now;
    this.emit({
      type: 'progress',
      phase: this.phase,
      file,
      fileBytes,
      fileSize,
      overallBytes: this.doneBeforeCurrentFile + fileBytes,
      overallTotal: this.overallTotal,
    });
  }

  finishFile(file: string, size: number, sha256: string): void {
    this.doneBeforeCurrentFile += size;
    this.emit({ type: 'file-done', phase: this.phase, file, size, sha256 });
  }
}
