// The evaluation report: per-sample numbers, means per DragBench category and overall for each result set (the
// table papers print: MD ↓, IF = 1 − LPIPS ↑, CLIP similarity ↑), and two plots the Markdown embeds as SVG files —
// MD against IF per result set (the papers' scatter) and MD per category.
import * as path from 'node:path';
import type { EvalMeans, EvalSetSummary } from '../../shared/evaluation';
import { writeFileAtomic } from '../io/atomic-write';
import { EVAL_REPORT_JSON, type EvalEntry, type EvalReportData } from './runner';

export const EVAL_REPORT_FILES = {
  markdown: 'clipdrag-eval-report.md',
  json: EVAL_REPORT_JSON,
  scatter: 'clipdrag-eval-md-if.svg',
  categories: 'clipdrag-eval-categories.svg',
} as const;

export type MetricMeans = EvalMeans;
export type SetSummary = EvalSetSummary;

function means(entries: readonly EvalEntry[]): MetricMeans | null {
  const scored = entries.filter((e) => e.score);
  if (scored.length === 0) return null;
  const mean = (pick: (e: EvalEntry) => number) => scored.reduce((sum, e) => sum + pick(e), 0) / scored.length;
  return {
    samples: scored.length,
    meanDistance: mean((e) => e.score!.meanDistance),
    imageFidelity: mean((e) => e.score!.imageFidelity),
    clipSimilarity: mean((e) => e.score!.clipSimilarity),
  };
}

export function summarise(report: EvalReportData): SetSummary[] {
  return report.sets.map((set) => {
    const ofSet = report.entries.filter((e) => e.set === set);
    const categories: Record<string, MetricMeans> = {};
    for (const category of [...new Set(ofSet.map((e) => e.category))].sort()) {
      const m = means(ofSet.filter((e) => e.category === category));
      if (m) categories[category] = m;
    }
    return { set, overall: means(ofSet), categories, failed: ofSet.filter((e) => !e.score).length };
  });
}

const fixed = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : '–');
const cell = (text: string) => text.replace(/\|/g, '\\|');

export function evalReportMarkdown(report: EvalReportData): string {
  const summary = summarise(report);
  const lines = ['# DragBench evaluation', ''];
  if (report.cancelled) lines.push('**Cancelled:** the numbers below cover what was scored before the evaluation stopped; run it again to score the rest.', '');
  lines.push(`Models: ${Object.entries(report.models).map(([k, v]) => `${k} \`${v}\``).join(', ')}. MD: mean distance in pixels (lower is better); IF: 1 − LPIPS; CLIP: image similarity (both higher is better).`, '');
  lines.push('| result set | samples | MD ↓ | IF ↑ | CLIP ↑ | not scored |', '|---|---:|---:|---:|---:|---:|');
  for (const s of summary) {
    const o = s.overall;
    lines.push(`| ${cell(s.set)} | ${o?.samples ?? 0} | ${o ? fixed(o.meanDistance, 2) : '–'} | ${o ? fixed(o.imageFidelity, 4) : '–'} | ${o ? fixed(o.clipSimilarity, 4) : '–'} | ${s.failed} |`);
  }
  lines.push('', `![MD against IF](${EVAL_REPORT_FILES.scatter})`, '', `![MD per category](${EVAL_REPORT_FILES.categories})`, '');
  const categories = [...new Set(report.entries.map((e) => e.category))].sort();
  lines.push('## Per category', '', `| category | ${summary.map((s) => `${cell(s.set)} MD / IF / CLIP`).join(' | ')} |`, `|---|${summary.map(() => '---').join('|')}|`);
  for (const category of categories) {
    lines.push(`| ${cell(category)} | ${summary.map((s) => {
      const m = s.categories[category];
      return m ? `${fixed(m.meanDistance, 2)} / ${fixed(m.imageFidelity, 4)} / ${fixed(m.clipSimilarity, 4)}` : '–';
    }).join(' | ')} |`);
  }
  lines.push('', '## Per sample', '', '| sample | result set | MD | IF | CLIP | distances |', '|---|---|---:|---:|---:|---|');
  for (const e of report.entries) {
    if (e.score) {
      lines.push(`| ${cell(e.sample)} | ${cell(e.set)} | ${fixed(e.score.meanDistance, 2)} | ${fixed(e.score.imageFidelity, 4)} | ${fixed(e.score.clipSimilarity, 4)} | ${e.score.distances.map((d) => fixed(d, 1)).join(', ')} |`);
    } else {
      lines.push(`| ${cell(e.sample)} | ${cell(e.set)} | – | – | – | ${cell(e.error ?? 'not scored')} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** MD (x) against IF (y), one point per result set, as the papers plot them. */
export function scatterSvg(summary: readonly SetSummary[]): string {
  const points = summary.filter((s) => s.overall);
  const w = 480;
  const h = 320;
  const pad = 48;
  const xs = points.map((s) => s.overall!.meanDistance);
  const ys = points.map((s) => s.overall!.imageFidelity);
  const [x0, x1] = range(xs);
  const [y0, y1] = range(ys);
  const px = (x: number) => pad + ((x - x0) / (x1 - x0)) * (w - 2 * pad);
  const py = (y: number) => h - pad - ((y - y0) / (y1 - y0)) * (h - 2 * pad);
  const marks = points.map((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const x = px(s.overall!.meanDistance);
    const y = py(s.overall!.imageFidelity);
    return `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="5" fill="${color}"/><text x="${(x + 8).toFixed(1)}" y="${(y + 4).toFixed(1)}" font-size="12" fill="${color}">${escapeXml(s.set)}</text>`;
  });
  return svg(w, h, [
    axes(w, h, pad, `mean distance (px) ↓  ${fixed(x0, 1)} – ${fixed(x1, 1)}`, `IF = 1 − LPIPS ↑  ${fixed(y0, 3)} – ${fixed(y1, 3)}`),
    ...marks,
  ]);
}

/** Mean distance per category, one bar per result set. */
export function categoriesSvg(summary: readonly SetSummary[]): string {
  const categories = [...new Set(summary.flatMap((s) => Object.keys(s.categories)))].sort();
  const w = Math.max(480, 60 + categories.length * (summary.length * 14 + 16));
  const h = 320;
  const pad = 48;
  const max = Math.max(1e-9, ...summary.flatMap((s) => Object.values(s.categories).map((m) => m.meanDistance)));
  const group = (w - 2 * pad) / Math.max(1, categories.length);
  const bar = Math.max(2, (group - 8) / Math.max(1, summary.length));
  const parts: string[] = [axes(w, h, pad, '', `mean distance (px) ↓  0 – ${fixed(max, 1)}`)];
  categories.forEach((category, c) => {
    summary.forEach((s, i) => {
      const m = s.categories[category];
      if (!m) return;
      const height = (m.meanDistance / max) * (h - 2 * pad);
      const x = pad + c * group + 4 + i * bar;
      parts.push(`<rect x="${x.toFixed(1)}" y="${(h - pad - height).toFixed(1)}" width="${(bar - 1).toFixed(1)}" height="${height.toFixed(1)}" fill="${PALETTE[i % PALETTE.length]}"><title>${escapeXml(`${s.set}, ${category}: ${fixed(m.meanDistance, 2)}`)}</title></rect>`);
    });
    const x = pad + c * group + group / 2;
    parts.push(`<text x="${x.toFixed(1)}" y="${h - pad + 14}" font-size="10" text-anchor="end" transform="rotate(-30 ${x.toFixed(1)} ${h - pad + 14})">${escapeXml(category)}</text>`);
  });
  summary.forEach((s, i) => parts.push(`<text x="${pad + 8}" y="${pad - 20 + i * 14}" font-size="12" fill="${PALETTE[i % PALETTE.length]}">■ ${escapeXml(s.set)}</text>`));
  return svg(w, h + 30, parts);
}

function range(values: readonly number[]): [number, number] {
  if (values.length === 0) return [0, 1];
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const margin = hi > lo ? (hi - lo) * 0.15 : Math.max(Math.abs(hi) * 0.1, 0.05);
  return [lo - margin, hi + margin];
}

function axes(w: number, h: number, pad: number, xLabel: string, yLabel: string): string {
  return (
    `<line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="#888"/>` +
    `<line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" stroke="#888"/>` +
    `<text x="${w / 2}" y="${h - 8}" font-size="12" text-anchor="middle" fill="#555">${escapeXml(xLabel)}</text>` +
    `<text x="14" y="${h / 2}" font-size="12" text-anchor="middle" fill="#555" transform="rotate(-90 14 ${h / 2})">${escapeXml(yLabel)}</text>`
  );
}

function svg(w: number, h: number, parts: readonly string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif"><rect width="100%" height="100%" fill="#fff"/>${parts.join('')}</svg>\n`;
}

/** Writes the JSON, the Markdown and both plots into `root`, each atomically. */
export async function writeEvalReport(root: string, report: EvalReportData): Promise<Record<keyof typeof EVAL_REPORT_FILES, string>> {
  const summary = summarise(report);
  const files = Object.fromEntries(Object.entries(EVAL_REPORT_FILES).map(([k, name]) => [k, path.join(root, name)])) as Record<keyof typeof EVAL_REPORT_FILES, string>;
  await writeFileAtomic(files.json, `${JSON.stringify({ ...report, summary }, null, 2)}\n`);
  await writeFileAtomic(files.scatter, scatterSvg(summary));
  await writeFileAtomic(files.categories, categoriesSvg(summary));
  await writeFileAtomic(files.markdown, evalReportMarkdown(report));
  return files;
}
