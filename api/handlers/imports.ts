import {
  getImportJob,
  importErrors,
  listImportJobs,
  importContacts as runImport,
} from '../../engine/imports/index.ts';
import { withCsvBody } from '../csv-body.ts';
import type { Handler } from '../types.ts';

export const importContacts: Handler<'importContacts'> = async ({ runtime, workspace, query, request }) =>
  withCsvBody(request, async (body, size) => ({
    status: 201,
    body: await runImport(runtime, workspace, body, {
      mapping: query.mapping,
      fileName: query.file_name,
      ...size,
    }),
  }));

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
