import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatLogLine, parseLogLine } from '../../../src/shared/log-format';

describe('sidecar log line format', () => {
  it('round-trips level and message', () => {
    for (const level of ['trace', 'debug', 'info', 'warn', 'error'] as const) {
      const line = formatLogLine(level, `a ${level} message`);
      assert.equal(line, `[${level}] a ${level} message\n`);
      assert.deepEqual(parseLogLine(line.trimEnd()), { level, message: `a ${level} message` });
    }
  });

  it('keeps a multi-line message as one record with indented continuation lines', () => {
    assert.equal(formatLogLine('error', 'Error: boom\n    at f (x.ts:1)\r\nlast'), '[error] Error: boom\n        at f (x.ts:1)\n    last\n');
  });

  it('passes lines from other writers through without a level', () => {
    assert.deepEqual(parseLogLine('Warning: Couldn\'t load Vulkan'), { level: undefined, message: "Warning: Couldn't load Vulkan" });
    assert.deepEqual(parseLogLine('[fatal] not ours'), { level: undefined, message: '[fatal] not ours' });
  });
});
