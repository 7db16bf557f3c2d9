// Entry point VS Code loads as `extensionTestsPath` (bundled to dist/test/integration/index.js): runs the
// mocha suite inside the extension host and rejects when a test fails, which makes the run exit non-zero.
import Mocha from 'mocha';

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', reporter: 'spec', color: false, timeout: 60_000 });
  // test/integration/run.mjs --grep: only the matching tests (full titles, suite and test).
  const grep = process.env.CLIPDRAG_IT_GREP;
  if (grep) mocha.grep(grep);
  // The test files are bundled into this file: define describe/it first, then evaluate them.
  mocha.suite.emit('pre-require', globalThis, 'clipdrag-integration', mocha);
  await import('./extension.test');
  await import('./editor.test');
  await import('./modes.test');
  await import('./batch.test');
  await import('./eval.test');
  const failures = await new Promise<number>((resolve) => mocha.run(resolve));
  if (failures > 0) throw new Error(`${failures} integration test(s) failed`);
}
