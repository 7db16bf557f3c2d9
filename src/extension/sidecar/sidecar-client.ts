// Owns the sidecar process: spawns it (lazily, and again after it dies), speaks JSON-RPC to it over
// stdio, forwards its stderr log, fails pending requests clearly when it exits, and stops it for good
// on dispose. It does not import `vscode`, so it runs (and is tested) in plain Node as well.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as readline from 'node:readline';
import {
  CancellationToken,
  Emitter,
  ProgressType,
  StreamMessageReader,
  StreamMessageWriter,
  createMessageConnection,
  type Event,
  type MessageConnection,
  type RequestType,
  type RequestType0,
} from 'vscode-jsonrpc/node';
import { parseLogLine, type LogLevel } from '../../shared/log-format';
import { InitializeRequest, SIDECAR_PARENT_PID_ENV, ShutdownRequest, type InitializeParams, type InitializeResult } from '../../shared/protocol';

export type SidecarLog = Record<LogLevel, (message: string) => void>;

export interface SidecarClientOptions {
  /** The sidecar entry script (dist/sidecar.js). */
  script: string;
  /** Node flags placed before the script (tests run the TypeScript source through `--import tsx`). */
  execArgv?: readonly string[];
  /** Sent with every `initialize`; read at each (re)start so setting changes apply. */
  initializeParams: () => InitializeParams;
  log: SidecarLog;
  /** Extra environment variables of the process (the extension sets the cache folder it owns). */
  env?: Readonly<Record<string, string>>;
  /** How long `stop()` waits for a graceful exit before killing the process. */
  stopTimeoutMs?: number;
}

/** A request could not complete because the sidecar process exited. */
export class SidecarExitedError extends Error {
  /** "exited with code 1" / "was killed by SIGKILL" */
  readonly how: string;

  constructor(
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly during: string,
  ) {
    const how = signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;
    super(`The CLIPDrag engine process ${how} during ${during}. It restarts on the next request; see "CLIPDrag: Show Logs" for details.`);
    this.name = 'SidecarExitedError';
    this.how = how;
  }
}

/** The sidecar did not come up: it could not be spawned, or it died before answering `initialize`. */
export class SidecarStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SidecarStartError';
  }
}

interface RunningSidecar {
  readonly child: ChildProcessWithoutNullStreams;
  readonly connection: MessageConnection;
  /** Rejects with the exit error once the process is gone (never resolves). */
  readonly exited: Promise<never>;
  /** Resolves once the process is gone and its output streams are drained. */
  readonly closed: Promise<void>;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  /** Set when we are the ones stopping it, so its exit is not reported as a crash. */
  stopping: boolean;
  /** The most recent stderr lines, quoted when the process dies during start-up. */
  readonly recentStderr: string[];
  initializeResult?: InitializeResult;
}

export interface SidecarExitEvent {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** False when it was stopped on purpose (restart, dispose). */
  unexpected: boolean;
}

const RECENT_STDERR_LINES = 20;

export class SidecarClient {
  private running: RunningSidecar | undefined;
  private starting: Promise<RunningSidecar> | undefined;
  private disposed = false;
  private progressTokens = 0;
  private readonly didStart = new Emitter<InitializeResult>();
  private readonly didExit = new Emitter<SidecarExitEvent>();
  /** Fires after each successful `initialize`. */
  readonly onDidStart: Event<InitializeResult> = this.didStart.event;
  /** Fires whenever a sidecar process ends. */
  readonly onDidExit: Event<SidecarExitEvent> = this.didExit.event;
  private readonly killOnHostExit = () => this.running?.child.kill('SIGKILL');

  constructor(private readonly options: SidecarClientOptions) {
    // Last resort if the host process ends without calling dispose(): never leave the sidecar behind.
    process.on('exit', this.killOnHostExit);
  }

  /** The pid of the live sidecar process, if any. */
  get pid(): number | undefined {
    return this.running && !this.running.exit ? this.running.child.pid : undefined;
  }

  /** What the live sidecar answered to `initialize`. */
  get initializeResult(): InitializeResult | undefined {
    return this.running?.initializeResult;
  }

  /** Starts the sidecar if it is not running; resolves to its `initialize` answer. */
  async start(): Promise<InitializeResult> {
    const running = await this.ensureRunning();
    return running.initializeResult!;
  }

  /** Sends a request, starting the sidecar first if needed. Fails with SidecarExitedError if it dies meanwhile. */
  async sendRequest<R>(type: RequestType0<R, void>, token?: CancellationToken): Promise<R>;
  async sendRequest<P, R>(type: RequestType<P, R, void>, params: P, token?: CancellationToken): Promise<R>;
  async sendRequest(type: RequestType<unknown, unknown, void> | RequestType0<unknown, void>, ...rest: unknown[]): Promise<unknown> {
    const running = await this.ensureRunning();
    // Send by method name: a descriptor may come from another bundle's copy of vscode-jsonrpc, whose
    // parameter-structure markers this connection would not recognise.
    const args = type.numberOfParams === 0 ? rest.slice(0, 1) : rest.slice(0, 2);
    return this.request(running, type.method, () => running.connection.sendRequest(type.method, ...args.filter((a) => a !== undefined)));
  }

  /**
   * Sends a request with a fresh `progressToken` added to its params, and passes the `$/progress` values sent with
   * that token to `onProgress` until the request settles.
   */
  async sendRequestWithProgress<P extends object, R, V>(
    type: RequestType<P, R, void>,
    params: P,
    onProgress: (value: V) => void,
    token?: CancellationToken,
  ): Promise<R> {
    const running = await this.ensureRunning();
    const progressToken = `progress-${++this.progressTokens}`;
    const listening = running.connection.onProgress(new ProgressType<V>(), progressToken, onProgress);
    try {
      const args: unknown[] = [{ ...params, progressToken }, ...(token ? [token] : [])];
      return await this.request(running, type.method, () => running.connection.sendRequest<R>(type.method, ...args));
    } finally {
      listening.dispose();
    }
  }

  /** Stops the current sidecar (if any) and starts a fresh one. */
  async restart(): Promise<InitializeResult> {
    await this.stop();
    return this.start();
  }

  /** Asks the sidecar to shut down, then kills it if it has not exited within the timeout. */
  async stop(): Promise<void> {
    const starting = this.starting;
    if (starting) await starting.catch(() => undefined);
    const running = this.running;
    if (!running || running.exit) return;
    running.stopping = true;
    const timeoutMs = this.options.stopTimeoutMs ?? 3000;
    const exited = running.exited.catch(() => undefined);
    try {
      await Promise.race([running.connection.sendRequest(ShutdownRequest), exited, delay(timeoutMs / 2)]);
    } catch {
      // It may already be on its way out; the exit wait below decides.
    }
    running.child.stdin.end();
    if (await Promise.race([exited.then(() => true), delay(timeoutMs / 2).then(() => false)])) return;
    this.options.log.warn(`sidecar ${running.child.pid} did not exit after shutdown; killing it`);
    running.child.kill('SIGKILL');
    await exited;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    try {
      await this.stop();
    } finally {
      process.off('exit', this.killOnHostExit);
      this.didStart.dispose();
      this.didExit.dispose();
    }
  }

  private ensureRunning(): Promise<RunningSidecar> {
    if (this.disposed) return Promise.reject(new Error('The CLIPDrag engine client has been disposed.'));
    if (this.running && !this.running.exit && !this.running.stopping && this.running.initializeResult) return Promise.resolve(this.running);
    if (!this.starting) {
      this.starting = this.spawnAndInitialize().finally(() => (this.starting = undefined));
    }
    return this.starting;
  }

  private async spawnAndInitialize(): Promise<RunningSidecar> {
    if (this.running && !this.running.exit) await this.stop();
    const running = this.spawn();
    this.running = running;
    let result: InitializeResult;
    try {
      result = await this.request(running, 'initialize', () => running.connection.sendRequest(InitializeRequest, this.options.initializeParams()));
    } catch (error) {
      if (!running.exit) running.child.kill('SIGKILL');
      // Let the last stderr lines arrive: they usually say what went wrong.
      await Promise.race([running.closed, delay(1000)]);
      const why = error instanceof SidecarExitedError ? `it ${error.how} before answering "initialize"` : error instanceof Error ? error.message : String(error);
      const stderr = running.recentStderr.length > 0 ? ` Its last output:\n${running.recentStderr.join('\n')}` : '';
      throw new SidecarStartError(`The CLIPDrag engine process failed to start: ${why}.${stderr}`);
    }
    running.initializeResult = result;
    this.options.log.info(`sidecar ${result.pid} ready: version ${result.version}, Node ${result.nodeVersion}, onnxruntime ${result.onnxruntimeVersion}`);
    this.didStart.fire(result);
    return running;
  }

  private spawn(): RunningSidecar {
    const { script, execArgv = [], log } = this.options;
    const child = spawn(process.execPath, [...execArgv, script, '--stdio'], {
      // In desktop VS Code process.execPath is Electron: this makes it behave as plain Node.
      env: { ...process.env, ...this.options.env, ELECTRON_RUN_AS_NODE: '1', [SIDECAR_PARENT_PID_ENV]: String(process.pid) },
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
    let rejectExited!: (error: Error) => void;
    const exited = new Promise<never>((_, reject) => (rejectExited = reject));
    exited.catch(() => undefined); // observed by whoever races against it
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
    const running: RunningSidecar = { child, connection, exited, closed, stopping: false, recentStderr: [] };

    this.forwardStderr(running);
    const onGone = (code: number | null, signal: NodeJS.Signals | null) => {
      if (running.exit) return;
      running.exit = { code, signal };
      const pid = child.pid ?? -1;
      const unexpected = !running.stopping;
      if (unexpected) log.error(`sidecar ${pid} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}; it restarts on the next request`);
      else log.info(`sidecar ${pid} stopped`);
      rejectExited(new SidecarExitedError(code, signal, 'a request'));
      connection.dispose();
      if (this.running === running) this.running = undefined;
      this.didExit.fire({ pid, code, signal, unexpected });
    };
    child.on('exit', onGone);
    child.on('error', (error) => {
      log.error(`sidecar process error: ${error.message}`);
      if (child.exitCode === null && child.signalCode === null && child.pid === undefined) onGone(null, null);
    });
    // Writing to a dead process's stdin raises EPIPE on the stream; the exit handler reports it.
    child.stdin.on('error', (error) => log.debug(`sidecar stdin: ${error.message}`));
    connection.onError(([error]) => log.error(`sidecar protocol error: ${error.message}`));
    connection.listen();
    log.info(`sidecar ${child.pid ?? '(not started)'} spawned: ${process.execPath} ${[...execArgv, script].join(' ')}`);
    return running;
  }

  private forwardStderr(running: RunningSidecar): void {
    const { log } = this.options;
    let lastLevel: LogLevel = 'info';
    readline.createInterface({ input: running.child.stderr, crlfDelay: Infinity }).on('line', (line) => {
      running.recentStderr.push(line);
      if (running.recentStderr.length > RECENT_STDERR_LINES) running.recentStderr.shift();
      const parsed = parseLogLine(line);
      // Unprefixed lines are continuations of the previous record, or output of native libraries.
      if (parsed.level) lastLevel = parsed.level;
      else if (!/^\s/.test(line)) lastLevel = 'info';
      log[lastLevel](`[sidecar] ${parsed.message}`);
    });
  }

  /** Runs one request against one process; if the process dies first, fails with a SidecarExitedError naming the method. */
  private async request<R>(running: RunningSidecar, method: string, send: () => Promise<R>): Promise<R> {
    try {
      return await Promise.race([send(), running.exited]);
    } catch (error) {
      if (running.exit) throw new SidecarExitedError(running.exit.code, running.exit.signal, `"${method}"`);
      throw error;
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
