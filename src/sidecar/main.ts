// Entry point of dist/sidecar.js and of the `clipdrag` command. With a CLI command in argv it runs the
// CLI; otherwise (`--stdio`, or input that is not a terminal) it serves the extension's JSON-RPC protocol.
import { USAGE, isCliInvocation, runCli } from './cli/cli';
import { log, redirectConsoleToStderr } from './log';
import { exitWhenParentDies } from './rpc/parent-watch';
import { startRpcServer } from './rpc/server';
import { SIDECAR_PARENT_PID_ENV } from '../shared/protocol';
import { SIDECAR_VERSION } from './version';

function serve(): void {
  redirectConsoleToStderr();
  process.on('uncaughtException', (error) => {
    log.error(`uncaught exception: ${error.stack ?? error.message}`);
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => log.error(`unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`));
  log.info(`clipdrag sidecar ${SIDECAR_VERSION} (pid ${process.pid}, Node ${process.version}) serving JSON-RPC on stdio`);
  startRpcServer({ input: process.stdin, output: process.stdout, log, onExit: (code) => process.exit(code) });
  const parentPid = Number(process.env[SIDECAR_PARENT_PID_ENV]);
  if (Number.isInteger(parentPid) && parentPid > 0) {
    exitWhenParentDies(parentPid, () => {
      log.warn(`parent process ${parentPid} is gone; exiting`);
      process.exit(0);
    });
  }
}

const args = process.argv.slice(2);
if (isCliInvocation(args)) {
  runCli(args).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      process.stderr.write(`clipdrag: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
} else if (args.length === 0 && process.stdin.isTTY) {
  process.stderr.write(`${USAGE}\n`);
  process.exitCode = 2;
} else {
  serve();
}
