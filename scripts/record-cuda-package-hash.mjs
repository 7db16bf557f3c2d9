#!/usr/bin/env node
// Pins the SHA-512 of onnxruntime's CUDA provider package in src/extension/cuda/cuda-package.ts. CLIPDrag: Install
// CUDA Support checks every download against the pinned hash when there is one (it must also equal the hash NuGet
// publishes), else against the published one. Run it once per onnxruntime-node version, where the
// package's source is reachable: node scripts/record-cuda-package-hash.mjs [URL] (default: NuGet's flat container).
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'extension', 'cuda', 'cuda-package.ts');
const source = fs.readFileSync(file, 'utf8');
const id = /package: '([^']+)'/.exec(source)[1].toLowerCase();
const version = /version: '([^']+)'/.exec(source)[1];
const installed = JSON.parse(fs.readFileSync(path.resolve(path.dirname(file), '..', '..', '..', 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')).version;
if (installed !== version) throw new Error(`cuda-package.ts names ${version}, but onnxruntime-node is ${installed}: update the version there first`);
const url = process.argv[2] ?? `https://api.nuget.org/v3-flatcontainer/${id}/${version}/${id}.${version}.nupkg`;

function sha512Of(address, redirects = 0) {
  return new Promise((resolve, reject) => {
    https
      .get(address, (response) => {
        if (response.statusCode >= 300 && response.statusCode < 400 && response.headers.location && redirects < 5) {
          response.resume();
          resolve(sha512Of(new URL(response.headers.location, address).toString(), redirects + 1));
        } else if (response.statusCode !== 200) {
          response.resume();
          reject(new Error(`${address}: HTTP ${response.statusCode}`));
        } else {
          const hash = crypto.createHash('sha512');
          response.on('data', (chunk) => hash.update(chunk));
          response.on('end', () => resolve(hash.digest('base64')));
          response.on('error', reject);
        }
      })
      .on('error', reject);
  });
}

const sha512 = await sha512Of(url);
fs.writeFileSync(file, source.replace(/sha512: (null|'[^']*'),/, `sha512: '${sha512}',`));
console.log(`${id} ${version}: sha512 ${sha512} recorded in ${path.relative(process.cwd(), file)}`);
