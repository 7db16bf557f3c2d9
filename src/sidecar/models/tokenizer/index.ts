export { ClipTokenizer, CONTEXT_LENGTH, END_OF_TEXT, splitWords, START_OF_TEXT, type PaddedIds, type TokenizedText } from './clip-tokenizer';
export { cleanPromptText, ftfyFixText } from './text-clean';
export { pythonHtmlUnescape } from './html-unescape';
export { readPadToken } from './tokenizer-config';
