// The sidecar's version is the package's version (esbuild inlines just this field).
import { version } from '../../package.json';

export const SIDECAR_VERSION: string = version;
