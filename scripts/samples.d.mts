// Types of samples.mjs, for the TypeScript tests.
export declare const SAMPLE_FILES: readonly string[];
export declare function copySamples(repo: string, destination: string, options?: { keepExisting?: boolean }): string[];
