import type { FastifyError } from 'fastify';
import { NotFoundError, ValidationError } from '../engine/validation.ts';

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

/** The problem+json body for an error a handler threw (or Fastify raised); `instance` is the URL. */
export function problemFor(thrown: unknown, instance: string) {
  const error = thrown as FastifyError & { errors?: unknown[] };
  const base = { instance };
  if (error instanceof ProblemError) {
    return {
      type: error.type,
      title: error.title,
      status: error.status,
      detail: error.message,
      errors: error.errors,
      ...base,
    };
  }
  // Engine errors: input the domain refuses (every problem, with its path), or a missing thing.
  if (error instanceof ValidationError) {
    return {
      type: 'https://chorus.dev/problems/validation',
      title: 'Unprocessable Content',
      status: 422,
      detail: error.message,
      errors: error.errors,
      ...base,
    };
  }
  if (error instanceof NotFoundError) {
    return { type: 'about:blank', title: 'Not Found', status: 404, detail: error.message, ...base };
  }
  if (error.validation) {
    const errors: FieldError[] = error.validation.map((v) => {
      const params = v.params as Record<string, unknown>;
      const extra =
        typeof params.missingProperty === 'string'
          ? `/${params.missingProperty}`
          : typeof params.additionalProperty === 'string'
            ? `/${params.additionalProperty}`
            : '';
      const message =
        typeof params.additionalProperty === 'string' ? 'is not a known field' : (v.message ?? 'is invalid');
      return {
        path: `/${error.validationContext ?? 'body'}${v.instancePath}${extra}`,
        message,
        code: v.keyword,
      };
    });
    return {
      type: 'https://chorus.dev/problems/validation',
      title: 'Bad Request',
      status: 400,
      detail: errors.map((e) => `${e.path} ${e.message}`).join('; '),
      errors,
      ...base,
    };
  }
  // Errors raised by a security handler arrive wrapped by fastify-openapi-glue.
  const securityError = error.errors?.find((e): e is ProblemError => e instanceof ProblemError);
  if (securityError || error.statusCode === 401) {
    return {
      type: 'https://chorus.dev/problems/unauthorized',
      title: 'Unauthorized',
      status: 401,
      detail: securityError?.message ?? 'missing or invalid bearer key',
      ...base,
    };
  }
  const status =
    error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
  if (status >= 500) {
    return {
      type: 'about:blank',
      title: 'Internal Server Error',
      status,
      detail: 'unexpected error',
      ...base,
    };
  }
  const titles: Record<number, string> = {
    400: 'Bad Request',
    404: 'Not Found',
    413: 'Content Too Large',
    415: 'Unsupported Media Type',
  };
  return {
    type: 'about:blank',
    title: titles[status] ?? 'Bad Request',
    status,
    detail: error.message,
    ...base,
  };
}
