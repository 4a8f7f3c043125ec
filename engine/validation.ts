/** A problem with one field of the input, named by a JSON pointer (`/body/3/phone`). */
export interface FieldIssue {
  path: string;
  message: string;
  code?: string;
}

/**
 * Input the engine refuses, with every problem found (not just the first). The API turns it into a
 * 422 problem+json with `errors`; the CLI prints the list. Nothing was written when it is thrown.
 */
export class ValidationError extends Error {
  readonly errors: FieldIssue[];
  constructor(message: string, errors: FieldIssue[]) {
    super(message);
    this.name = 'ValidationError';
    this.errors = errors;
  }
}

/** Input that names something that does not exist (a contact id, an import job). */
export class NotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

/** Escapes one JSON-pointer segment (RFC 6901). */
export function pointer(...segments: (string | number)[]): string {
  // One plain segment (an index, a field name) is the common case on bulk paths: no array, no escaping.
  if (segments.length === 1) {
    const only = segments[0]!;
    if (typeof only === 'number') return `/${only}`;
    if (!only.includes('~') && !only.includes('/')) return `/${only}`;
  }
  return segments.map((s) => `/${String(s).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}
