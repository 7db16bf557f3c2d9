// Types of test-env.mjs, for the TypeScript tests that launch the same Chromium.
export declare const CODE_SERVER_VERSION: string;
export declare const VSCODE_RIPGREP_VERSION: string;
export declare const RIPGREP_ASSET: string;
export declare function testEnvRoot(): string;
export declare function testEnvPaths(root?: string): {
  root: string;
  debsDir: string;
  debRoot: string;
  codeServerDir: string;
  codeServerBin: string;
  codeServerStamp: string;
  chromiumDebs: string;
  chromiumRoot: string;
  chromiumBin: string;
  chromiumStamp: string;
  chromiumLibraryPath: string;
};
