// The CLI's flag tables: every edit parameter has a flag, `edit` and `batch` read the same parameter flags the same
// way, old spellings still work, and --help is help on every command.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { EDIT_PARAMETER_DEFINITIONS, EDIT_PARAMETER_NAMES, type EditParameters } from '../../../src/shared/edit-parameters';
import { BATCH_USAGE, parseBatchOptions } from '../../../src/sidecar/cli/batch-command';
import { runCli } from '../../../src/sidecar/cli/cli';
import { DOCTOR_USAGE, parseDoctorOptions } from '../../../src/sidecar/cli/doctor';
import { EDIT_USAGE, parseEditOptions } from '../../../src/sidecar/cli/edit-command';
import { parameterFlagName } from '../../../src/sidecar/cli/flags';
import { UsageError } from '../../../src/sidecar/cli/io';

/** The parameters each command reads from the same words. */
function parameters(args: string[]): { edit: Partial<EditParameters>; batch: Partial<EditParameters> } {
  const edit = parseEditOptions(['image.png', ...args]);
  const batch = parseBatchOptions(['folder', ...args], path.sep);
  assert.notEqual(edit, 'help');
  assert.notEqual(batch, 'help');
  return { edit: (edit as Exclude<typeof edit, 'help'>).parameters, batch: (batch as Exclude<typeof batch, 'help'>).batch.dragBenchParameters ?? {} };
}

function usageError(parse: () => unknown, pattern: RegExp): void {
  assert.throws(parse, (error: unknown) => error instanceof UsageError && pattern.test(error.message));
}

describe('CLI flags', () => {
  it('every edit parameter can be set on edit and batch, with the same flag and the same value', () => {
    for (const name of EDIT_PARAMETER_NAMES) {
      const definition = EDIT_PARAMETER_DEFINITIONS[name];
      const value = definition.kind === 'enum' ? definition.values.at(-1)! : definition.max;
      const flag = `--${parameterFlagName(name)}`;
      const { edit, batch } = parameters([flag, String(value)]);
      assert.deepEqual(edit, { [name]: value }, flag);
      assert.deepEqual(batch, { [name]: value }, flag);
      assert.ok(EDIT_USAGE.includes(flag) && BATCH_USAGE.includes(flag), `${flag} is in both usage texts`);
    }
    assert.deepEqual(parameters(['--inference-steps', '30']).edit, { inferenceSteps: 30 });
  });

  it('accepts the old spellings and --param, the named flag winning', () => {
    assert.deepEqual(parameters(['--max-iters', '7', '--lora-steps', '2', '--param', 'seed=3', '--param=fusionRule=projection']), {
      edit: { dragSteps: 7, loraSteps: 2, seed: 3, fusionRule: 'projection' },
      batch: { dragSteps: 7, loraSteps: 2, seed: 3, fusionRule: 'projection' },
    });
    assert.deepEqual(parameters(['--param', 'dragSteps=5', '--max-iters', '6', '--drag-steps=9']).edit, { dragSteps: 9 });
  });

  it('checks each value against its parameter and names the flag and the range', () => {
    for (const parse of [(a: string[]) => parseEditOptions(['i.png', ...a]), (a: string[]) => parseBatchOptions(['f', ...a])]) {
      usageError(() => parse(['--drag-steps', '1.5']), /: --drag-steps must be an integer from 0 to 10000 \(maximum drag iterations; got "1\.5"\)/);
      usageError(() => parse(['--latent-learning-rate', '0']), /--latent-learning-rate must be a number > 0 and ≤ 1/);
      usageError(() => parse(['--fusion-rule', 'sum']), /--fusion-rule must be one of official, projection \(got "sum"\)/);
      usageError(() => parse(['--param', 'dragStep=3']), /--param expects name=value with one of inferenceSteps, .*dragSteps/);
      usageError(() => parse(['--seed']), /Option '--seed <value>' argument missing/);
      usageError(() => parse(['--bogus']), /Unknown option '--bogus' \(see clipdrag (edit|batch) --help\)/);
      usageError(() => parse(['--working-width', '100']), /--working-width must be a positive multiple of 8/);
    }
  });

  it('--help is help on every command (exit 0, the command\'s own usage on stdout)', async () => {
    assert.equal(parseEditOptions(['--help']), 'help');
    assert.equal(parseBatchOptions(['-h']), 'help');
    assert.equal(parseDoctorOptions(['--help']), 'help');
    for (const [command, usage] of [['edit', EDIT_USAGE], ['batch', BATCH_USAGE], ['doctor', DOCTOR_USAGE]] as const) {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli([command, '--help'], { out: (l) => out.push(l), err: (l) => err.push(l) });
      assert.equal(code, 0, err.join('\n'));
      assert.deepEqual(out, [usage]);
    }
    // A mistake in a command shows that command's usage.
    const err: string[] = [];
    assert.equal(await runCli(['edit', 'a.png', '--frobnicate'], { out: () => {}, err: (l) => err.push(l) }), 2);
    assert.match(err.join('\n'), /^clipdrag: edit: Unknown option '--frobnicate'.*\n\nclipdrag edit <image>/);
  });
});
