import { createClient } from '@clickhouse/client';
import type { Runtime } from '../runtime.ts';
import { toCsv } from './csv.ts';

export interface SqlOptions {
  /** Server-side time limit (max_execution_time). */
  timeoutSeconds?: number;
  /** The query fails rather than return more rows than this. */
  maxRows?: number;
}

export interface SqlResult {
  columns: { name: string; type: string }[];
  rows: unknown[][];
}

export class SqlError extends Error {}

/**
 * Runs an analyst's query read-only (readonly = 2: no writes, no DDL; SET and SETTINGS refused) with a
 * time and row limit, unqualified names resolving to the Chorus database (its tables and views).
 * Embedded chdb keeps settings for the whole session, so after this call the runtime stays
 * read-only: use it from a process of its own (the `chorus sql` command), never from the API.
 */
export async function runReadOnlySql(
  runtime: Runtime,
  query: string,
  options: SqlOptions = {},
): Promise<SqlResult> {
  const text = query.trim().replace(/;\s*$/, '');
  if (!text) throw new SqlError('empty query');
  const bare = stripLiterals(text);
  if (/;\s*\S/.test(bare)) throw new SqlError('one statement at a time');
  // readonly = 2 refuses writes and DDL but lets us set the limits on every call (an embedded session
  // keeps settings); so the query itself may not touch settings.
  if (/\bSETTINGS\b|^\s*SET\b/i.test(bare)) throw new SqlError('queries may not change settings');
  // readonly must come last: settings listed after it could not be applied.
  const settings = {
    max_execution_time: options.timeoutSeconds ?? 30,
    timeout_overflow_mode: 'throw',
    max_result_rows: String(options.maxRows ?? 100_000),
    result_overflow_mode: 'throw',
    readonly: '2',
  } as const;
  const format = 'JSONCompactEachRowWithNamesAndTypes';
  let result: unknown[][];
  if (runtime.ch.mode === 'server' && runtime.config.clickhouseUrl) {
    const client = createClient({ url: runtime.config.clickhouseUrl, database: runtime.ch.database });
    try {
      result = (await (
        await client.query({ query: text, format, clickhouse_settings: settings as never })
      ).json()) as unknown[][];
    } finally {
      await client.close();
    }
  } else {
    await runtime.ch.command(`USE ${runtime.ch.database}`);
    result = (await (
      await runtime.ch.client.query({ query: text, format, clickhouse_settings: settings as never })
    ).json()) as unknown[][];
  }
  const [names = [], types = [], ...rows] = result;
  return {
    columns: (names as string[]).map((name, i) => ({ name, type: String((types as string[])[i]) })),
    rows,
  };
}

function stripLiterals(text: string): string {
  return text
    .replace(/'(?:[^'\\]|\\.)*'/g, "''")
    .replace(/`[^`]*`/g, '``')
    .replace(/--.*$/gm, '');
}

export function formatSql(result: SqlResult, format: 'table' | 'csv' | 'json'): string {
  const names = result.columns.map((c) => c.name);
  const objects = result.rows.map((row) => Object.fromEntries(names.map((name, i) => [name, row[i]])));
  if (format === 'csv') return toCsv(names, objects);
  if (format === 'json') return `${JSON.stringify(objects, null, 2)}\n`;
  const cell = (value: unknown) =>
    value === null || value === undefined
      ? 'NULL'
      : typeof value === 'object'
        ? JSON.stringify(value)
        : String(value);
  const cells = result.rows.map((row) => row.map(cell));
  const widths = names.map((name, i) =>
    Math.min(60, Math.max(name.length, ...cells.map((r) => r[i]!.length))),
  );
  const line = (values: string[]) =>
    values
      .map((v, i) => (v.length > widths[i]! ? `${v.slice(0, widths[i]! - 1)}…` : v.padEnd(widths[i]!)))
      .join(' | ');
  const out = [line(names), widths.map((w) => '-'.repeat(w)).join('-+-'), ...cells.map(line)];
  out.push(`(${result.rows.length} row${result.rows.length === 1 ? '' : 's'})`);
  return `${out.join('\n')}\n`;
}
