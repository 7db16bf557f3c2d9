/** Reads back the files `writeEvalReport` wrote, for assertions. */
import * as fs from 'node:fs/promises';

export async function readEvalReportFiles(files: { markdown: string; json: string; scatter: string; categories: string }): Promise<Record<'markdown' | 'json' | 'scatter' | 'categories', string>> {
  const [markdown, json, scatter, categories] = await Promise.all([files.markdown, files.json, files.scatter, files.categories].map((f) => fs.readFile(f, 'utf8')));
  return { markdown: markdown!, json: json!, scatter: scatter!, categories: categories! };
}
