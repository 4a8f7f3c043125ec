/** An error that becomes an RFC 9457 problem+json response. */
export interface FieldError {
  /** JSON pointer of the bad field, e.g. `/body/attributes/age` or `/body/3/name`. */
  path: string;
  message: string;
  code?: string;
}

export class ProblemError extends Error {
  readonly status: number;
  readonly title: string;
  readonly errors: FieldError[];
  readonly type: string;

  constructor(status: number, title: string, detail?: string, errors: FieldError[] = [], type?: string) {
    super(detail ?? title);
    this.status = status;
    this.title = title;
    this.errors = errors;
    this.type = type ?? `https://chorus.dev/problems/${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  }
}

export const badRequest = (detail: string, errors: FieldError[] = []) =>
  new ProblemError(400, 'Bad Request', detail, errors);
export const unprocessable = (detail: string, errors: FieldError[] = []) =>
  new ProblemError(422, 'Unprocessable Content', detail, errors);
export const notFound = (detail: string) => new ProblemError(404, 'Not Found', detail);
export const conflict = (detail: string, errors: FieldError[] = []) =>
  new ProblemError(409, 'Conflict', detail, errors);
export const unauthorized = (detail: string) => new ProblemError(401, 'Unauthorized', detail);
