/** Where the CLI writes: stdout for results, stderr for problems (tests pass their own). */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

export const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** A mistake in how the command was called: reported with the usage text and exit code 2. */
export class UsageError extends Error {}
