import type { Readable } from 'node:stream';
import {
  getImportJob,
  importErrors,
  listImportJobs,
  importContacts as runImport,
} from '../../engine/imports/index.ts';
import { ProblemError } from '../problem.ts';
import type { Handler } from '../types.ts';

/** Largest CSV accepted by POST /v1/imports/contacts (CHORUS_IMPORT_MAX_BYTES, default 2 GiB). */
function importMaxBytes(): number {
  const configured = Number(process.env.CHORUS_IMPORT_MAX_BYTES);
  return Number.isFinite(configured) && configured > 0 ? configured : 2 * 1024 ** 3;
}

export const importContacts: Handler<'importContacts'> = async ({ runtime, workspace, query, request }) => {
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
    const job = await runImport(runtime, workspace, body, {
      mapping: query.mapping,
      fileName: query.file_name,
      bytesTotal: Number.isFinite(declared) ? declared : undefined,
      maxBytes,
    });
    return { status: 201, body: job };
  } finally {
    // A refused or failed import stops reading early; drain the rest so the reply goes out.
    if (!body.readableEnded) body.resume();
  }
};

export const listImports: Handler<'listImports'> = async ({ runtime, workspace, query }) => ({
  status: 200,
  body: { data: await listImportJobs(runtime, workspace.id, query.limit ?? 50) },
});

export const getImport: Handler<'getImport'> = async ({ runtime, workspace, params }) => ({
  status: 200,
  body: await getImportJob(runtime, workspace.id, params.id),
});

function csvCell(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

export const getImportErrors: Handler<'getImportErrors'> = async ({ runtime, workspace, params, query }) => {
  const data = await importErrors(runtime, workspace.id, params.id, {
    afterRow: query.after_row,
    limit: query.limit ?? 1000,
  });
  if (query.format === 'csv') {
    const lines = [
      'row,column,reason',
      ...data.map((e) => [String(e.row), csvCell(e.column ?? ''), csvCell(e.reason)].join(',')),
    ];
    return {
      status: 200,
      body: `${lines.join('\n')}\n`,
      contentType: 'text/csv; charset=utf-8',
      headers: { 'content-disposition': `attachment; filename="${params.id}-errors.csv"` },
    };
  }
  return { status: 200, body: { data } };
};
