// The line format of the sidecar's stderr log: "[level] message". Lines without a prefix (native
// libraries print to stderr too) are kept and shown as they are.
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function formatLogLine(level: LogLevel, message: string): string {
  // One record per line: continuation lines are indented so a reader can tell them apart.
  return `[${level}] ${message.replace(/\r?\n/g, '\n    ')}\n`;
}

const PREFIX = /^\[(trace|debug|info|warn|error)\] ?(.*)$/;

export function parseLogLine(line: string): { level: LogLevel | undefined; message: string } {
  const match = PREFIX.exec(line);
  return match ? { level: match[1] as LogLevel, message: match[2] } : { level: undefined, message: line };
}
