// The sidecar's logger. stdout carries the RPC protocol, so every log line goes to stderr, prefixed with
// its level; the extension parses the prefix and forwards the line to its LogOutputChannel.
import { formatLogLine, type LogLevel } from '../shared/log-format';

export interface Logger {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

function write(level: LogLevel, message: string): void {
  process.stderr.write(formatLogLine(level, message));
}

export const log: Logger = {
  trace: (message) => write('trace', message),
  debug: (message) => write('debug', message),
  info: (message) => write('info', message),
  warn: (message) => write('warn', message),
  error: (message) => write('error', message),
};

/** Keeps stray console output (ours or a dependency's) off stdout, where it would corrupt the RPC framing. */
export function redirectConsoleToStderr(): void {
  const toStderr = (level: LogLevel) => (...args: unknown[]) => write(level, args.map((a) => (typeof a === 'string' ? a : inspect(a))).join(' '));
  console.log = toStderr('info');
  console.info = toStderr('info');
  console.debug = toStderr('debug');
  console.trace = toStderr('trace');
}

function inspect(value: unknown): string {
  if (value instanceof Error) return value.stack ?? value.message;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
