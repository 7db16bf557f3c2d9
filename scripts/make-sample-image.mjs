#!/usr/bin/env node
// Draws media/samples/sample.png (512 × 512, the resolution Stable Diffusion 1.5 works at): a simple
// scene with distinct objects to drag. Deterministic: the same SVG, rasterised by sharp, every time.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const size = 512;
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}">
  <defs>
    <linearGradient id="sky" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#5b8fd6"/><stop offset="1" stop-color="#cfe3f7"/>
    </linearGradient>
    <radialGradient id="ball" cx="0.35" cy="0.35" r="0.7">
      <stop offset="0" stop-color="#ff9a7a"/><stop offset="1" stop-color="#b3261e"/>
    </radialGradient>
  </defs>
  <rect width="512" height="340" fill="url(#sky)"/>
  <circle cx="410" cy="90" r="42" fill="#ffd966"/>
  <path d="M0 300 L120 190 L230 300 Z" fill="#6f7f91"/>
  <path d="M150 300 L300 150 L450 300 Z" fill="#56677a"/>
  <rect y="300" width="512" height="212" fill="#7fae5a"/>
  <rect x="90" y="330" width="28" height="90" fill="#6b4a2b"/>
  <circle cx="104" cy="315" r="55" fill="#2f6b2a"/>
  <ellipse cx="330" cy="452" rx="70" ry="12" fill="#4f7a38"/>
  <circle cx="330" cy="392" r="62" fill="url(#ball)"/>
</svg>`;

const out = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'media', 'samples', 'sample.png');
const info = await sharp(Buffer.from(svg)).png({ compressionLevel: 9, palette: false }).toFile(out);
console.log(`wrote ${out} (${info.width} × ${info.height}, ${info.size} bytes)`);
