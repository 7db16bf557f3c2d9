/**
 * The padding token a Hugging Face tokenizer folder declares (`special_tokens_map.json`, else
 * `tokenizer_config.json`; a token is written as a string or as `{ "content": … }`). SD-1.x folders pad with the end
 * token, SD-2.x folders with "!"; a folder that declares none returns null.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

export async function readPadToken(dir: string): Promise<string | null> {
  for (const name of ['special_tokens_map.json', 'tokenizer_config.json']) {
    const file = path.join(dir, name);
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new Error(`${file}: cannot read: ${(err as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new Error(`${file}: not valid JSON: ${(err as Error).message}`);
    }
    const pad = (json as { pad_token?: unknown } | null)?.pad_token;
    if (typeof pad === 'string') return pad;
    if (typeof pad === 'object' && pad !== null && typeof (pad as { content?: unknown }).content === 'string') return (pad as { content: string }).content;
  }
  return null;
}
