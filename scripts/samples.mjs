// The sample files shipped in media/samples, and copies of them for test runs and `npm start`. Only these files are
// copied: whatever a user left beside them (a saved spec, results, a batch report) never reaches a test, and trying
// the product works on a copy, so it never writes into the repository.
import fs from 'node:fs';
import path from 'node:path';

export const SAMPLE_FILES = ['sample.png'];

/**
 * Copies the sample files from `<repo>/media/samples` into `destination` (created if needed). With `keepExisting`,
 * a file already there is left as it is (a scratch folder the user has been working in). Returns the files copied.
 */
export function copySamples(repo, destination, { keepExisting = false } = {}) {
  fs.mkdirSync(destination, { recursive: true });
  const copied = [];
  for (const name of SAMPLE_FILES) {
    const target = path.join(destination, name);
    if (keepExisting && fs.existsSync(target)) continue;
    fs.copyFileSync(path.join(repo, 'media', 'samples', name), target);
    copied.push(name);
  }
  return copied;
}
