// Turns what went wrong talking to the hub into a message that says what to do about it.
import { ModelStoreError, cancelledError } from './errors';
import { HubHttpError, HubNetworkError } from './hub-http';

export interface HubRequestContext {
  endpoint: string;
  repoId: string;
  revision: string;
  /** The file being fetched, when the failure is about one file. */
  file?: string;
  tokenSource: string | undefined;
  signal: AbortSignal | undefined;
}

export function toModelStoreError(error: unknown, context: HubRequestContext): ModelStoreError {
  if (error instanceof ModelStoreError) return error;
  const { endpoint, repoId, revision, file } = context;
  const what = file ? `${file} of ${repoId}@${revision}` : `${repoId}@${revision}`;
  if (context.signal?.aborted) return cancelledError(`Fetching ${what}`);

  if (error instanceof HubNetworkError) {
    return new ModelStoreError(
      'OFFLINE',
      `Cannot reach the model hub at ${endpoint} (${error.reason}) to fetch ${what}. Check the network connection or proxy; ` +
        'models already in the cache keep working offline, and a local model folder can be used instead of a repo id.',
      { cause: error },
    );
  }
  if (!(error instanceof HubHttpError)) {
    return new ModelStoreError('NETWORK', `Fetching ${what} from ${endpoint} failed: ${describe(error)}`, { cause: error });
  }

  const repoPage = `${endpoint}/${repoId}`;
  const hub = error.hubMessage ? ` The hub says: "${error.hubMessage}".` : '';
  const tokenAdvice = context.tokenSource
    ? `A token was sent (from ${context.tokenSource}); check that its account has access to ${repoId} and that it is a valid read token.`
    : 'No token was sent: set HF_TOKEN to a Hugging Face access token (https://huggingface.co/settings/tokens), or log in with `huggingface-cli login`.';

  if (error.errorCode === 'GatedRepo' || ((error.status === 401 || error.status === 403) && error.errorCode !== 'RepoNotFound')) {
    return new ModelStoreError(
      'UNAUTHORIZED',
      `Access to ${what} was refused (HTTP ${error.status}${error.errorCode ? ` ${error.errorCode}` : ''}).${hub} ` +
        `If the repo is gated, accept its license on ${repoPage} with your Hugging Face account. ${tokenAdvice}`,
      { cause: error },
    );
  }
  if (error.errorCode === 'RepoNotFound' || (error.status === 404 && !error.errorCode && !file)) {
    // The hub answers 401 RepoNotFound when it will not say whether a private repo exists.
    const privateHint = context.tokenSource ? '' : ` If it is private or gated, the hub hides it from anonymous requests: ${tokenAdvice}`;
    return new ModelStoreError('NOT_FOUND', `Repository ${repoId} was not found on ${endpoint}. Check the spelling of the repo id.${privateHint}`, {
      cause: error,
    });
  }
  if (error.errorCode === 'RevisionNotFound') {
    return new ModelStoreError('NOT_FOUND', `Revision "${revision}" does not exist in ${repoId} (no such branch, tag or commit; see ${repoPage}).`, {
      cause: error,
    });
  }
  if (error.status === 404) {
    return new ModelStoreError('NOT_FOUND', `${file ?? 'A file'} does not exist in ${repoId}@${revision}.${hub}`, { cause: error });
  }
  return new ModelStoreError(
    'NETWORK',
    `The hub at ${endpoint} answered HTTP ${error.status} for ${what}.${hub} ${error.status >= 500 ? 'It may be a temporary problem: try again later.' : ''}`.trim(),
    { cause: error },
  );
}

/** Network trouble or a server error: cases where a cached copy is the better answer than an error. */
export function isUnreachable(error: unknown): boolean {
  return error instanceof HubNetworkError || (error instanceof HubHttpError && error.status >= 500);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
