// The SHA-512 NuGet publishes for a package version, read through its v3 API: the service index names the
// package metadata resource (`RegistrationsBaseUrl*`); that resource's registration leaf for the version,
// `{@id}{id-lowercase}/{version-lowercase}.json`, names its catalog entry; the catalog entry (a PackageDetails catalog
// leaf) carries `packageHash` (base64) and `packageHashAlgorithm`. Install CUDA Support checks a download against it
// when no hash is pinned in CLIPDrag, and checks a pinned hash against it when both are known.
// Plain Node (no `vscode`), so tests can run it against a local HTTP server.

/** NuGet.org's service index (the `clipdrag.cuda.serviceIndexUrl` default). */
export const NUGET_SERVICE_INDEX = 'https://api.nuget.org/v3/index.json';

/**
 * The package metadata resource types, best first: 3.6.0 includes SemVer 2.0.0 packages; 3.4.0 and 3.6.0 are served
 * gzip-compressed (fetch decodes them); the others are the uncompressed hive and its aliases.
 */
const REGISTRATION_TYPES = ['RegistrationsBaseUrl/3.6.0', 'RegistrationsBaseUrl/3.4.0', 'RegistrationsBaseUrl', 'RegistrationsBaseUrl/3.0.0-rc', 'RegistrationsBaseUrl/3.0.0-beta'];

export interface PublishedHash {
  /** SHA-512 of the .nupkg, base64. */
  sha512: string;
  /** The catalog entry it was read from. */
  source: string;
}

export class PublishedHashError extends Error {}

/** Reads the SHA-512 the package source publishes for `packageId` `version`; throws PublishedHashError saying what is missing. */
export async function resolvePublishedHash(options: { serviceIndexUrl: string; packageId: string; version: string; signal?: AbortSignal }): Promise<PublishedHash> {
  const { serviceIndexUrl, packageId, version, signal } = options;
  const what = `${packageId} ${version}`;
  const index = await getJson(serviceIndexUrl, 'the NuGet service index', signal);
  const resources = Array.isArray((index as { resources?: unknown }).resources) ? ((index as { resources: unknown[] }).resources) : [];
  const baseUrl = REGISTRATION_TYPES.map((type) => resources.find((r) => typeOf(r).includes(type))).find((r) => r !== undefined);
  const base = baseUrl && typeof (baseUrl as { '@id'?: unknown })['@id'] === 'string' ? ((baseUrl as { '@id': string })['@id']) : undefined;
  if (!base) throw new PublishedHashError(`The service index ${serviceIndexUrl} lists no package metadata resource (RegistrationsBaseUrl), so the published hash of ${what} cannot be read.`);

  const leafUrl = new URL(`${encodeURIComponent(packageId.toLowerCase())}/${encodeURIComponent(version.toLowerCase())}.json`, base.endsWith('/') ? base : `${base}/`).toString();
  const leaf = await getJson(leafUrl, `the registration leaf of ${what}`, signal);
  const entry = (leaf as { catalogEntry?: unknown }).catalogEntry;
  // A standalone registration leaf names its catalog entry by URL; registration pages inline it as an object.
  let details: unknown = entry;
  let source = leafUrl;
  if (typeof entry === 'string' || (isObject(entry) && entry.packageHash === undefined && typeof entry['@id'] === 'string')) {
    source = new URL(typeof entry === 'string' ? entry : (entry['@id'] as string), leafUrl).toString();
    details = await getJson(source, `the catalog entry of ${what}`, signal);
  }
  if (!isObject(details)) throw new PublishedHashError(`The registration leaf ${leafUrl} has no catalog entry, so the published hash of ${what} is unknown.`);
  const { packageHash, packageHashAlgorithm } = details;
  if (typeof packageHash !== 'string' || packageHash === '') throw new PublishedHashError(`The catalog entry ${source} publishes no packageHash for ${what}.`);
  if (typeof packageHashAlgorithm !== 'string' || packageHashAlgorithm.toUpperCase() !== 'SHA512') {
    throw new PublishedHashError(`The catalog entry ${source} publishes a ${JSON.stringify(packageHashAlgorithm ?? null)} hash for ${what}; only SHA512 is accepted.`);
  }
  if (Buffer.from(packageHash, 'base64').length !== 64) throw new PublishedHashError(`The catalog entry ${source} publishes ${JSON.stringify(packageHash)} as the SHA-512 of ${what}, which is not a base64 SHA-512.`);
  return { sha512: packageHash, source };
}

function typeOf(resource: unknown): string[] {
  const type = isObject(resource) ? resource['@type'] : undefined;
  return typeof type === 'string' ? [type] : Array.isArray(type) ? type.filter((t): t is string => typeof t === 'string') : [];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function getJson(url: string, what: string, signal: AbortSignal | undefined): Promise<unknown> {
  if (!/^https?:/.test(url)) throw new PublishedHashError(`${what} must be an http(s) URL (got ${JSON.stringify(url)}); check the clipdrag.cuda.serviceIndexUrl setting.`);
  let response: Response;
  try {
    response = await fetch(url, { ...(signal ? { signal } : {}), headers: { accept: 'application/json' } });
  } catch (error) {
    if (signal?.aborted) throw new Error('The download was cancelled.');
    throw new PublishedHashError(`Could not read ${what} from ${url}: ${error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)}.`);
  }
  if (!response.ok) throw new PublishedHashError(`Could not read ${what} from ${url}: HTTP ${response.status}.`);
  try {
    return await response.json();
  } catch {
    throw new PublishedHashError(`${what} at ${url} is not JSON.`);
  }
}
