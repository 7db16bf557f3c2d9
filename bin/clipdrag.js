#!/usr/bin/env node
// The `clipdrag` command: the sidecar's CLI (see `clipdrag --help`). It runs the bundled dist/sidecar.js.
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- a plain CommonJS launcher, not part of the bundles */
const path = require('node:path');
const fs = require('node:fs');

const sidecar = path.join(__dirname, '..', 'dist', 'sidecar.js');
if (!fs.existsSync(sidecar)) {
  process.stderr.write(`clipdrag: ${sidecar} is missing; build it first with "npm run build".\n`);
  process.exit(1);
}
require(sidecar);
