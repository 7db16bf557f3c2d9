// The sidecar's command-line front door: `clipdrag <command>`.
import { SIDECAR_VERSION } from '../version';
import { BATCH_USAGE, parseBatchOptions, runBatchCommand } from './batch-command';
import { DOCTOR_USAGE, parseDoctorOptions, runDoctor } from './doctor';
import { EDIT_USAGE, parseEditOptions, runEdit } from './edit-command';
import { EVAL_USAGE, parseEvalOptions, runEvalCommand } from './eval-command';
import { UsageError, processIo, type CliIo } from './io';

export const USAGE = `Usage: clipdrag <command> [options]

Commands:
  doctor         list the onnxruntime execution providers on this machine and the one that would be used
  edit <image>   edit one image; the result and its recipe are written next to it
  batch <folder> edit every image of a folder that has a saved edit, and DragBench samples
  eval <folder>  score DragBench results as the papers do (mean distance, 1 − LPIPS, CLIP similarity)
  --version      print the version
  --help         print this help (clipdrag <command> --help: the command's options)
  --stdio        serve the extension's JSON-RPC protocol on stdin/stdout (used by the VS Code extension)`;

/** Each command's usage, printed by `clipdrag <command> --help` and after a usage mistake in it. */
const COMMAND_USAGE: Readonly<Record<string, string>> = { doctor: DOCTOR_USAGE, edit: EDIT_USAGE, batch: BATCH_USAGE, eval: EVAL_USAGE };

/** The argv words that select the CLI rather than the RPC server. */
export function isCliInvocation(args: readonly string[]): boolean {
  return args.length > 0 && args[0] !== '--stdio';
}

/** Runs one CLI command and resolves to the process exit code. */
export async function runCli(args: readonly string[], io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case '--version':
      case '-v':
      case 'version':
        io.out(SIDECAR_VERSION);
        return 0;
      case '--help':
      case '-h':
      case 'help':
        io.out(USAGE);
        return 0;
      case 'doctor': {
        const options = parseDoctorOptions(rest);
        return options === 'help' ? help(command, io) : await runDoctor(options, io);
      }
      case 'edit': {
        const options = parseEditOptions(rest);
        return options === 'help' ? help(command, io) : await runEdit(options, io);
      }
      case 'batch': {
        const options = parseBatchOptions(rest);
        return options === 'help' ? help(command, io) : await runBatchCommand(options, io);
      }
      case 'eval': {
        const options = parseEvalOptions(rest);
        return options === 'help' ? help(command, io) : await runEvalCommand(options, io);
      }
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`clipdrag: ${error.message}\n\n${(command !== undefined && COMMAND_USAGE[command]) || USAGE}`);
    return 2;
  }
}

function help(command: string, io: CliIo): number {
  io.out(COMMAND_USAGE[command]!);
  return 0;
}
