// The `fetch` every hub request goes through, ours and @huggingface/hub's (via its `fetch` option):
// it adds the token, the caller's AbortSignal and a timeout, and turns failures into typed errors
// that keep what the hub said (X-Error-Code), which the library's own errors drop.

/** The hub answered with an HTTP error. */
export class HubHttpError extends Error {
  override readonly name = 'HubHttpError';
  constructor(
    readonly status: number,
    readonly url: string,
    /** The hub's `X-Error-Code` header: RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo. */
    readonly errorCode: string | undefined,
    /** The hub's own wording, from `X-Error-Message` or the JSON body. */
    readonly hubMessage: string | undefined,
  ) {
    super(`HTTP ${status}${errorCode ? ` ${errorCode}` : ''} for ${url}${hubMessage ? `: ${hubMessage}` : ''}`);
  }
}

/** No HTTP answer at all: refused, DNS failure, reset, timeout. */
export class HubNetworkError extends Error {
  override readonly name = 'HubNetworkError';
  constructor(
    readonly url: string,
    /** ECONNREFUSED, ENOTFOUND, ETIMEDOUT, ... or `timeout` for our own request timeout. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot reach ${url} (${reason})`, options);
  }
}

export interface HubFetchOptions {
  endpoint: string;
  token: string | undefined;
  /** The caller's cancellation. */
  signal: AbortSignal | undefined;
  /** Underlying fetch (a proxy-aware one, say); default the global fetch. */
  baseFetch?: typeof fetch;
  /** Fail requests that get no response headers within this time. */
  requestTimeoutMs: number;
}

export type HubFetch = typeof fetch;

export function createHubFetch(options: HubFetchOptions): HubFetch {
  const baseFetch = options.baseFetch ?? fetch;
  const endpointOrigin = new URL(options.endpoint).origin;

  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const headers = new Headers(init?.headers);
    // The token only goes to the hub itself; fetch drops it on cross-origin redirects (CDN) on its own.
    if (options.token && new URL(url).origin === endpointOrigin && !headers.has('authorization')) {
      headers.set('authorization', `Bearer ${options.token}`);
    }
    headers.set('user-agent', 'clipdrag-vscode (model store; @huggingface/hub)');
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), options.requestTimeoutMs);
    const signals = [timeout.signal, ...(options.signal ? [options.signal] : []), ...(init?.signal ? [init.signal] : [])];
    let response: Response;
    try {
      response = await baseFetch(url, { ...init, headers, signal: AbortSignal.any(signals) });
    } catch (error) {
      if (options.signal?.aborted || init?.signal?.aborted) throw error;
      throw new HubNetworkError(url, timeout.signal.aborted ? 'timeout' : networkReason(error), { cause: error });
    } finally {
      clearTimeout(timer);
    }
    if (response.status >= 400) throw await toHttpError(response, url);
    return response;
  };
}

async function toHttpError(response: Response, url: string): Promise<HubHttpError> {
  const errorCode = response.headers.get('x-error-code') ?? undefined;
  let hubMessage = response.headers.get('x-error-message') ?? undefined;
  const body = await response.text().catch(() => '');
  if (!hubMessage && body) {
    try {
      const parsed = JSON.parse(body) as { error?: unknown; message?: unknown };
      const text = parsed.error ?? parsed.message;
      if (typeof text === 'string') hubMessage = text;
    } catch {
      hubMessage = body.slice(0, 200);
    }
  }
  return new HubHttpError(response.status, url, errorCode, hubMessage);
}

/** The system error code under undici's "fetch failed" / "terminated" TypeErrors. */
export function networkReason(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return error instanceof Error ? error.message : String(error);
}
