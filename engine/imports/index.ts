import { isUtf8 } from 'node:buffer';
import { createInterface } from 'node:readline';
import { Readable, Transform } from 'node:stream';
import { parse } from 'csv-parse';
import { type AttributeSchema, coerceCell, getAttributeSchema } from '../contacts/attributes.ts';
import type { PhoneResult } from '../contacts/phone.ts';
import type { ContactInput } from '../contacts/types.ts';
import { bulkPhones, upsertContacts } from '../contacts/upsert.ts';
import { ingestEvents } from '../events/index.ts';
import { newId } from '../ids.ts';
import type { Runtime } from '../runtime.ts';
import { type FieldIssue, NotFoundError, ValidationError } from '../validation.ts';
import type { Workspace } from '../workspaces.ts';
import { MappingError, type MappingTarget, parseMapping, resolveMapping } from './mapping.ts';

export { MappingError, type MappingTarget, parseMapping, resolveMapping } from './mapping.ts';

/** A field longer than this is refused (the row is reported); a record up to MAX_RECORD is still parsed. */
export const MAX_FIELD_BYTES = 64 * 1024;
/** A single CSV record larger than this stops the import (the parser cannot skip past it safely). */
export const MAX_RECORD_BYTES = 32 * 1024 * 1024;
/** Stored error rows per job; the counts keep going past it. */
export const MAX_STORED_ERRORS = 10_000;
/** Rows per upsert: each batch costs a few fixed queries and inserts, so fewer, larger ones are cheaper. */
export const DEFAULT_BATCH = 10_000;

export interface ImportJob {
  id: string;
  workspace_id: string;
  kind: 'contacts' | 'events';
  status: 'queued' | 'running' | 'completed' | 'failed';
  file_name: string | null;
  mapping: Record<string, string> | null;
  rows_processed: number;
  rows_imported: number;
  rows_rejected: number;
  contacts_created: number;
  contacts_updated: number;
  contacts_unchanged: number;
  bytes_read: number;
  bytes_total: number | null;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface ImportRowError {
  row: number;
  column: string | null;
  reason: string;
}

export interface ImportOptions {
  mapping?: string | Record<string, string>;
  fileName?: string;
  /** Size of the input when known (file size, Content-Length), for progress. */
  bytesTotal?: number;
  /** Refuse input larger than this many bytes (the job fails when it is crossed). */
  maxBytes?: number;
  batchSize?: number;
  /** Called after each batch with the job as it stands. */
  onProgress?: (job: ImportJob) => void;
  /** Called once the header is read and the mapping is valid, with the job id. */
  onStart?: (job: ImportJob) => void;
  /** Lists every imported row joins, besides those its own columns name (a campaign's uploaded audience). */
  lists?: string[];
}

const JOB_COLUMNS = `id, workspace_id, kind, status, file_name, mapping, rows_processed, rows_imported, rows_rejected,
  contacts_created, contacts_updated, contacts_unchanged, bytes_read, bytes_total, error, created_at, started_at, finished_at`;

function toJob(row: Record<string, unknown>): ImportJob {
  const n = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));
  const t = (v: unknown) => (v ? new Date(v as string).toISOString() : null);
  return {
    ...(row as unknown as ImportJob),
    rows_processed: n(row.rows_processed),
    rows_imported: n(row.rows_imported),
    rows_rejected: n(row.rows_rejected),
    contacts_created: n(row.contacts_created),
    contacts_updated: n(row.contacts_updated),
    contacts_unchanged: n(row.contacts_unchanged),
    bytes_read: n(row.bytes_read),
    bytes_total: row.bytes_total === null || row.bytes_total === undefined ? null : Number(row.bytes_total),
    created_at: t(row.created_at)!,
    started_at: t(row.started_at),
    finished_at: t(row.finished_at),
  };
}

export async function getImportJob(runtime: Runtime, workspaceId: string, id: string): Promise<ImportJob> {
  const { rows } = await runtime.pg.query(
    `SELECT ${JOB_COLUMNS} FROM import_jobs WHERE workspace_id = $1 AND id = $2`,
    [workspaceId, id],
  );
  if (!rows[0]) throw new NotFoundError(`no import ${id}`);
  return toJob(rows[0]);
}

export async function listImportJobs(
  runtime: Runtime,
  workspaceId: string,
  limit = 50,
): Promise<ImportJob[]> {
  const { rows } = await runtime.pg.query(
    `SELECT ${JOB_COLUMNS} FROM import_jobs WHERE workspace_id = $1 ORDER BY created_at DESC, id LIMIT $2`,
    [workspaceId, limit],
  );
  return rows.map(toJob);
}

export async function importErrors(
  runtime: Runtime,
  workspaceId: string,
  jobId: string,
  options: { limit?: number; afterRow?: number } = {},
): Promise<ImportRowError[]> {
  await getImportJob(runtime, workspaceId, jobId);
  const { rows } = await runtime.pg.query<{ row_number: string; column_name: string; reason: string }>(
    `SELECT row_number, column_name, reason FROM import_errors WHERE job_id = $1 AND row_number > $2
      ORDER BY row_number, column_name LIMIT $3`,
    [jobId, options.afterRow ?? 0, Math.min(options.limit ?? MAX_STORED_ERRORS, MAX_STORED_ERRORS)],
  );
  return rows.map((r) => ({ row: Number(r.row_number), column: r.column_name || null, reason: r.reason }));
}

/** Counts bytes through the stream and stops it past a limit. */
function byteCounter(maxBytes: number | undefined, onBytes: (total: number) => void): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      total += chunk.length;
      onBytes(total);
      if (maxBytes !== undefined && total > maxBytes)
        callback(
          new ImportTooLarge(`the file is larger than ${maxBytes} bytes; split it or raise the limit`),
        );
      else callback(null, chunk);
    },
  });
}

export class ImportTooLarge extends Error {}

interface PendingRow {
  row: number;
  input: ContactInput;
}

/** The CSV column behind each part of a contact input, to name the column of an upsert error. */
function columnIndex(header: string[], targets: MappingTarget[]) {
  const byField = new Map<string, string>();
  targets.forEach((t, i) => {
    const column = header[i]!;
    if (t.kind === 'attribute') byField.set(`attributes/${t.name}`, column);
    else if (t.kind === 'consent') byField.set(`consent`, byField.get('consent') ?? column);
    else byField.set(t.kind, column);
  });
  return (path: string): string => {
    const [field, sub] = path.split('/').filter(Boolean).slice(1);
    if (!field) return '';
    return byField.get(field === 'attributes' ? `attributes/${sub}` : field) ?? '';
  };
}

const CONSENT_VALUES: Record<string, 'opted_in' | 'opted_out'> = {
  opted_in: 'opted_in',
  in: 'opted_in',
  yes: 'opted_in',
  y: 'opted_in',
  true: 'opted_in',
  '1': 'opted_in',
  opted_out: 'opted_out',
  out: 'opted_out',
  no: 'opted_out',
  n: 'opted_out',
  false: 'opted_out',
  '0': 'opted_out',
};

function buildInput(
  cells: Buffer[],
  header: string[],
  targets: MappingTarget[],
  schema: AttributeSchema,
  row: number,
  source: string,
  errors: ImportRowError[],
): ContactInput | undefined {
  const before = errors.length;
  if (cells.length !== header.length) {
    errors.push({ row, column: null, reason: `has ${cells.length} fields; the header has ${header.length}` });
    return undefined;
  }
  const input: ContactInput = {};
  const attributes: Record<string, unknown> = {};
  for (let i = 0; i < targets.length; i++) {
    const target = targets[i]!;
    if (target.kind === 'ignore') continue;
    const column = header[i]!;
    const buffer = cells[i]!;
    if (buffer.length > MAX_FIELD_BYTES) {
      errors.push({
        row,
        column,
        reason: `is ${buffer.length} bytes; a field may have at most ${MAX_FIELD_BYTES}`,
      });
      continue;
    }
    if (!isUtf8(buffer)) {
      errors.push({ row, column, reason: 'is not valid UTF-8 text (save the file as UTF-8)' });
      continue;
    }
    const text = buffer.toString('utf8');
    // Quotes are read leniently so one bad row does not derail the rest; a field that still starts
    // with a quote had a closing quote followed by more text.
    if (text.startsWith('"')) {
      errors.push({
        row,
        column,
        reason: 'has broken quoting: a quoted field must end with " before the comma',
      });
      continue;
    }
    const value = text.trim();
    if (value === '') continue;
    switch (target.kind) {
      case 'phone':
      case 'external_id':
      case 'language':
      case 'timezone':
      case 'last_seen_at':
        input[target.kind] = value;
        break;
      case 'tags':
      case 'lists':
        input[target.kind] = value
          .split('|')
          .map((s) => s.trim())
          .filter(Boolean);
        break;
      case 'attribute': {
        const checked = coerceCell(schema.get(target.name)!, value);
        if (checked && !checked.ok) errors.push({ row, column, reason: `${target.name} ${checked.message}` });
        else if (checked) attributes[target.name] = checked.value;
        break;
      }
      case 'consent': {
        const status = CONSENT_VALUES[value.toLowerCase()];
        if (!status)
          errors.push({
            row,
            column,
            reason: `"${value.slice(0, 40)}" is not a consent status (opted_in/opted_out, yes/no, 1/0)`,
          });
        else {
          input.consent = input.consent ?? [];
          input.consent.push({
            channel: target.channel,
            purpose: target.purpose,
            status,
            source,
            proof: `${column}=${value} in ${source}, row ${row}`,
          });
        }
        break;
      }
    }
  }
  if (input.phone === undefined && input.external_id === undefined && errors.length === before)
    errors.push({ row, column: null, reason: 'has neither a phone nor an external_id' });
  if (errors.length > before) return undefined;
  if (Object.keys(attributes).length) input.attributes = attributes;
  return input;
}

/**
 * Imports contacts from a CSV stream in constant memory: rows are parsed as they arrive and upserted
 * in batches. A bad row (wrong type, bad phone, broken quoting, non-UTF-8 bytes, an oversized field)
 * is reported with its row number, column and reason while the good rows land. Importing the same
 * file twice changes nothing (upserts of unchanged contacts write nothing). Problems with the file as
 * a whole (no header, a bad mapping) throw a ValidationError before any row is written.
 */
export async function importContacts(
  runtime: Runtime,
  workspace: Pick<Workspace, 'id' | 'default_region'>,
  input: Readable | AsyncIterable<Buffer | string>,
  options: ImportOptions = {},
): Promise<ImportJob> {
  const { pg } = runtime;
  const jobId = newId('imp', 16);
  const explicit =
    typeof options.mapping === 'string' ? parseMappingOr422(options.mapping) : (options.mapping ?? {});
  const schema = await getAttributeSchema(pg, workspace.id);
  const fileName = options.fileName ?? null;
  await pg.query(
    `INSERT INTO import_jobs (id, workspace_id, kind, status, file_name, mapping, bytes_total, started_at)
     VALUES ($1, $2, 'contacts', 'running', $3, $4, $5, now())`,
    [jobId, workspace.id, fileName, JSON.stringify(explicit), options.bytesTotal ?? null],
  );
  const counts = {
    processed: 0,
    imported: 0,
    rejected: 0,
    created: 0,
    updated: 0,
    unchanged: 0,
    bytes: 0,
    storedErrors: 0,
  };
  const source = `import:${fileName ?? jobId}`;
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  let pending: PendingRow[] = [];
  let errors: ImportRowError[] = [];

  const saveProgress = async (
    final?: { status: 'completed' | 'failed'; error?: string },
    processed = counts.processed,
  ) => {
    if (errors.length) {
      // Taken before the write: rows of the next batch may report errors while it runs.
      const taken = errors;
      errors = [];
      const room = Math.max(0, MAX_STORED_ERRORS - counts.storedErrors);
      const stored = taken.slice(0, room);
      counts.storedErrors += stored.length;
      if (stored.length)
        await pg.query(
          `INSERT INTO import_errors (job_id, row_number, column_name, reason)
           SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING`,
          [
            jobId,
            stored.map((e) => e.row),
            stored.map((e) => e.column ?? ''),
            stored.map((e) => e.reason.slice(0, 1000)),
          ],
        );
    }
    const { rows } = await pg.query(
      `UPDATE import_jobs SET rows_processed = $2, rows_imported = $3, rows_rejected = $4, contacts_created = $5,
              contacts_updated = $6, contacts_unchanged = $7, bytes_read = $8,
              status = COALESCE($9, status), error = COALESCE($10, error),
              finished_at = CASE WHEN $9::text IS NULL THEN NULL ELSE now() END
        WHERE id = $1 RETURNING ${JOB_COLUMNS}`,
      [
        jobId,
        processed,
        counts.imported,
        counts.rejected,
        counts.created,
        counts.updated,
        counts.unchanged,
        counts.bytes,
        final?.status ?? null,
        final?.error ?? null,
      ],
    );
    const job = toJob(rows[0]!);
    options.onProgress?.(job);
    return job;
  };

  // A batch's phones are parsed (on the worker pool) from the moment it is full, while the batch
  // before it is still being written: that step no longer waits in line behind the writes.
  const take = (): [PendingRow[], Promise<PhoneResult[]> | undefined] => {
    const batch = pending;
    pending = [];
    const phones = batch.length
      ? bulkPhones(
          batch.map((p) => p.input),
          workspace.default_region,
        )
      : undefined;
    phones?.catch(() => {}); // observed by the upsert that awaits it
    return [batch, phones];
  };
  const flush = async ([taken, phones]: [PendingRow[], Promise<PhoneResult[]> | undefined]) => {
    if (!taken.length && !errors.length) return;
    let batch = taken;
    let batchPhones = phones;
    // Progress counts the rows up to this batch, not those parsed while it is written.
    const processed = counts.processed;
    // A batch is all-or-nothing; rows the upsert refuses are reported and the rest retried.
    for (let attempt = 0; batch.length && attempt < 5; attempt++) {
      try {
        const result = await upsertContacts(
          runtime,
          workspace,
          batch.map((p) => p.input),
          { path: '', schema, actor: `import:${jobId}`, ...(batchPhones ? { phones: batchPhones } : {}) },
        );
        counts.imported += batch.length;
        counts.created += result.created;
        counts.updated += result.updated;
        counts.unchanged += result.unchanged;
        batch = [];
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        const bad = new Set<number>();
        for (const issue of error.errors) {
          const index = Number(issue.path.split('/')[1]);
          const row = batch[index];
          if (!row) continue;
          bad.add(index);
          errors.push({ row: row.row, column: columnOf(issue.path) || null, reason: issue.message });
        }
        if (bad.size === 0) throw error;
        counts.rejected += bad.size;
        const keep = (_: unknown, i: number) => !bad.has(i);
        batch = batch.filter(keep);
        if (batchPhones) batchPhones = Promise.resolve((await batchPhones).filter(keep));
      }
    }
    await saveProgress(undefined, processed);
  };

  let writing: Promise<void> = Promise.resolve();
  let header: string[] | undefined;
  let targets: MappingTarget[] = [];
  let columnOf: (path: string) => string = () => '';
  let failure: string | undefined;
  const parser = parse({
    bom: true,
    encoding: null as never,
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    max_record_size: MAX_RECORD_BYTES,
    info: true,
  });
  parser.on('skip', (error: Error & { lines?: number; records?: number; code?: string }) => {
    counts.processed++;
    counts.rejected++;
    errors.push({
      row: (error.records ?? counts.processed) + 1,
      column: null,
      reason:
        error.code === 'CSV_QUOTE_NOT_CLOSED'
          ? `a quoted field opened here is never closed; lines up to ${error.lines} were read as one field and not imported`
          : error.message.slice(0, 300),
    });
  });
  const source$ = input instanceof Readable ? input : Readable.from(input);
  const counter = byteCounter(options.maxBytes, (bytes) => {
    counts.bytes = bytes;
  });
  source$.on('error', (e) => counter.destroy(e));
  const records = source$.pipe(counter).pipe(parser);
  counter.on('error', (e) => parser.destroy(e));
  try {
    for await (const { record, info } of records as AsyncIterable<{
      record: Buffer[];
      info: { records: number };
    }>) {
      if (!header) {
        header = record.map((b) => (isUtf8(b) ? b.toString('utf8').trim() : ''));
        if (header.some((h) => h === ''))
          throw new MappingError(['the header has an empty or non-UTF-8 column name']);
        targets = resolveMapping(header, explicit, schema);
        columnOf = columnIndex(header, targets);
        options.onStart?.(await getImportJob(runtime, workspace.id, jobId));
        continue;
      }
      counts.processed++;
      const row = info.records;
      const built = buildInput(record, header, targets, schema, row, source, errors);
      if (built && options.lists?.length) built.lists = [...(built.lists ?? []), ...options.lists];
      if (built) pending.push({ row, input: built });
      else counts.rejected++;
      if (pending.length >= batchSize) {
        // One batch is written while the next is parsed: at most two batches in memory, in order.
        const next = take();
        await writing;
        writing = flush(next);
        writing.catch(() => {}); // observed by the next await
      }
    }
    if (!header) throw new MappingError(['the file is empty: expected a header row naming the columns']);
    await writing;
    await flush(take());
  } catch (error) {
    if (error instanceof MappingError) {
      await saveProgress({ status: 'failed', error: error.message });
      throw new ValidationError(
        `the CSV cannot be imported: ${error.message}`,
        error.problems.map((message) => ({ path: '/body', message })),
      );
    }
    const code = (error as { code?: string }).code;
    if (error instanceof ImportTooLarge) failure = error.message;
    else if (code === 'CSV_MAX_RECORD_SIZE')
      failure = `a record is larger than ${MAX_RECORD_BYTES} bytes; the import stopped there`;
    else if (typeof code === 'string' && code.startsWith('CSV_'))
      failure = (error as Error).message.slice(0, 500);
    else {
      await saveProgress({ status: 'failed', error: 'internal error' }).catch(() => {});
      throw error;
    }
    await writing.catch(() => {});
    if (pending.length) await flush(take()).catch(() => {});
    const job = await saveProgress({ status: 'failed', error: `${failure} (rows before it were imported)` });
    runtime.log.warn({ job: jobId, error: failure }, 'import failed');
    return job;
  }
  return saveProgress({ status: 'completed' });
}

function parseMappingOr422(text: string): Record<string, string> {
  try {
    return parseMapping(text);
  } catch (error) {
    if (error instanceof MappingError)
      throw new ValidationError(
        'invalid mapping',
        error.problems.map((message) => ({ path: '/querystring/mapping', message })),
      );
    throw error;
  }
}

export interface EventImportResult {
  lines: number;
  inserted: number;
  duplicates: number;
  contacts_created: number;
  rejected_batches: number;
  /** The first problems found (line numbers of the file). */
  errors: FieldIssue[];
}

/**
 * Imports events from NDJSON (one event per line) in batches; each batch is all-or-nothing as on
 * POST /v1/events, and a refused batch is reported with file line numbers while the others land.
 */
export async function importEvents(
  runtime: Runtime,
  workspace: Pick<Workspace, 'id' | 'default_region'>,
  input: Readable,
  options: { batchSize?: number; onProgress?: (lines: number) => void } = {},
): Promise<EventImportResult> {
  const result: EventImportResult = {
    lines: 0,
    inserted: 0,
    duplicates: 0,
    contacts_created: 0,
    rejected_batches: 0,
    errors: [],
  };
  const batchSize = Math.min(options.batchSize ?? DEFAULT_BATCH, 10_000);
  let items: unknown[] = [];
  let lineNumbers: number[] = [];
  let syntaxErrors: FieldIssue[] = [];
  const flush = async () => {
    if (!items.length) return;
    if (syntaxErrors.length) {
      result.rejected_batches++;
      result.errors.push(...syntaxErrors.slice(0, 100 - result.errors.length));
    } else
      try {
        const r = await ingestEvents(runtime, workspace, items, { path: '' });
        result.inserted += r.inserted;
        result.duplicates += r.duplicates;
        result.contacts_created += r.contacts_created;
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        result.rejected_batches++;
        for (const issue of error.errors) {
          if (result.errors.length >= 100) break;
          const [index, ...rest] = issue.path.split('/').filter(Boolean);
          const line = lineNumbers[Number(index)];
          result.errors.push({
            path: `line ${line ?? '?'}${rest.length ? ` /${rest.join('/')}` : ''}`,
            message: issue.message,
          });
        }
      }
    items = [];
    lineNumbers = [];
    syntaxErrors = [];
    options.onProgress?.(result.lines);
  };
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    result.lines++;
    if (line.trim() === '') continue;
    try {
      items.push(JSON.parse(line));
    } catch {
      items.push(undefined);
      syntaxErrors.push({ path: `line ${result.lines}`, message: 'is not valid JSON' });
    }
    lineNumbers.push(result.lines);
    if (items.length >= batchSize) await flush();
  }
  await flush();
  return result;
}
