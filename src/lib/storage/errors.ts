/**
 * Named storage errors with messages a user can act on. Every IndexedDB
 * failure that reaches the UI goes through `toStorageError`.
 */

export class StorageError extends Error {
  override name = 'StorageError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The browser refused the write because the origin's storage quota is used up. */
export class QuotaExceededStorageError extends StorageError {
  override name = 'QuotaExceededStorageError';
}

/** IndexedDB is missing or blocked (some private-browsing modes, disabled site data). */
export class StorageUnavailableError extends StorageError {
  override name = 'StorageUnavailableError';
}

/** A record with this id already exists (add), or does not exist (update). */
export class RecordConflictError extends StorageError {
  override name = 'RecordConflictError';
}

export const QUOTA_MESSAGE =
  "Your browser's storage is full: export your data (Data → Export), then delete old runs or checkpoints and try again. " +
  'Nothing from this action was saved.';

export const UNAVAILABLE_MESSAGE =
  'This browser does not let the page store data (IndexedDB is unavailable — private browsing or blocked site data?). ' +
  'Allow site data for this page, or export your work before closing the tab.';

function errorName(e: unknown): string {
  if (typeof e === 'object' && e !== null && 'name' in e) return String((e as { name: unknown }).name);
  return '';
}

/**
 * Map anything IndexedDB throws to a `StorageError` subclass. `what` says what
 * was being done, e.g. "save the preference".
 */
export function toStorageError(e: unknown, what: string, write = true): StorageError {
  if (e instanceof StorageError) return e;
  const nothing = write ? ' Nothing was saved.' : '';
  const name = errorName(e);
  const inner =
    e instanceof Error || (typeof e === 'object' && e !== null && 'message' in e)
      ? String((e as Error).message)
      : String(e);
  // Firefox reports quota problems as NS_ERROR_DOM_QUOTA_REACHED in older versions.
  if (name === 'QuotaExceededError' || /quota/i.test(inner)) {
    return new QuotaExceededStorageError(QUOTA_MESSAGE, { cause: e });
  }
  if (name === 'ConstraintError') {
    return new RecordConflictError(`Could not ${what}: a record with the same id already exists.${nothing}`, {
      cause: e,
    });
  }
  if (name === 'InvalidStateError' || name === 'UnknownError' || name === 'SecurityError') {
    return new StorageUnavailableError(`Could not ${what}. ${UNAVAILABLE_MESSAGE}`, { cause: e });
  }
  return new StorageError(`Could not ${what}: ${inner || name || 'unknown storage error'}.${nothing}`, {
    cause: e,
  });
}
