import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { ProblemError } from './problem.ts';

/** Largest CSV upload accepted (contact imports, campaign audiences): CHORUS_IMPORT_MAX_BYTES, default 2 GiB. */
export function importMaxBytes(): number {
  const configured = Number(process.env.CHORUS_IMPORT_MAX_BYTES);
  return Number.isFinite(configured) && configured > 0 ? configured : 2 * 1024 ** 3;
}

/**
 * Checks a streamed CSV request (its type and declared size) and hands its body to `consume`; whatever
 * `consume` leaves unread is drained, so a refusal mid-file still gets its reply out.
 */
export async function withCsvBody<T>(
  request: FastifyRequest,
  consume: (body: Readable, size: { bytesTotal?: number; maxBytes: number }) => Promise<T>,
): Promise<T> {
  if (!String(request.headers['content-type'] ?? '').startsWith('text/csv'))
    throw new ProblemError(
      415,
      'Unsupported Media Type',
      'send the CSV file as the body with Content-Type: text/csv',
    );
  const maxBytes = importMaxBytes();
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes)
    throw new ProblemError(
      413,
      'Content Too Large',
      `the file is ${declared} bytes; at most ${maxBytes} are accepted`,
    );
  const body = request.body as Readable;
  try {
    return await consume(body, { bytesTotal: Number.isFinite(declared) ? declared : undefined, maxBytes });
  } finally {
    if (!body.readableEnded) body.resume();
  }
}
