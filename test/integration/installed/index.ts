// Entry point of the installed-package suite (bundled to dist/test/integration/installed.js; `npm run test:installed`):
// the runner has installed a VSIX into a fresh extensions folder and gives the workbench only an empty stand-in as
// development extension, so these tests exercise CLIPDrag exactly as a user who installed the package has it.
import Mocha from 'mocha';

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', reporter: 'spec', color: false, timeout: 60_000 });
  mocha.suite.emit('pre-require', globalThis, 'clipdrag-installed', mocha);
  await import('./installed.test');
  const failures = await new Promise<number>((resolve) => mocha.run(resolve));
  if (failures > 0) throw new Error(`${failures} installed-package test(s) failed`);
}
