import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { fromPglite } from 'pg-boss';
import { assertIdentifier } from './clickhouse.ts';

export interface SqlResult<T> {
  rows: T[];
  rowCount: number;
}

/** What Chorus code needs of Postgres; the same on PGlite and on a real server. */
export interface Sql {
  /**
   * `options.name` makes it a named prepared statement on a server (parsed and planned once per
   * connection, for hot statements); the same name must always carry the same text. PGlite ignores it.
   */
  query<T = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
    options?: { name?: string },
  ): Promise<SqlResult<T>>;
  /**
   * Bulk append with COPY: `rows` is COPY text (tab-separated, `\N` for NULL, fields escaped with
   * `copyText`). Present on PGlite, where it costs a fraction of an `INSERT ... SELECT FROM unnest`
   * (no array parameters to parse, on the thread that serves requests); absent on a server, where
   * callers use a parameterised insert (it runs in the server's process, not ours).
   */
  copyFrom?(table: string, columns: readonly string[], rows: string): Promise<void>;
}

/** A text value as a COPY text-format field: backslash, tab and line breaks escaped. */
export function copyText(value: string): string {
  return /[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : value;
}
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

export interface PostgresStore extends Sql {
  readonly mode: 'embedded' | 'server';
  /** Schema holding Chorus tables (and pg-boss's, as `<schema>_boss`). */
  readonly schema: string;
  /** Runs fn inside one transaction; rolled back when fn throws. */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  /** Runs several statements without parameters (migrations). */
  exec(text: string): Promise<void>;
  /** pg-boss constructor options for this store. */
  bossOptions(): Record<string, unknown>;
  close(): Promise<void>;
}

export interface PostgresOptions {
  /** postgres:// URL (production). When absent, embedded PGlite is used. */
  url?: string;
  /** PGlite data directory; 'memory://' keeps it in memory. */
  dataDir?: string;
  /** Schema for Chorus tables; tests isolate by schema on a shared server. */
  schema?: string;
}

export async function openPostgres(options: PostgresOptions = {}): Promise<PostgresStore> {
  const schema = assertIdentifier(options.schema ?? 'chorus', 'Postgres schema');
  return options.url ? openServer(options.url, schema) : openEmbedded(options.dataDir ?? './data/pg', schema);
}

async function openServer(url: string, schema: string): Promise<PostgresStore> {
  const bootstrap = new pg.Client({ connectionString: url });
  await bootstrap.connect();
  await bootstrap.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  await bootstrap.end();
  const pool = new pg.Pool({
    connectionString: url,
    max: Number(process.env.CHORUS_PG_POOL ?? 10),
    idleTimeoutMillis: Number(process.env.CHORUS_PG_IDLE_MS ?? 10_000),
    options: `-c search_path=${schema}`,
  });
  pool.on('error', () => {}); // idle client errors surface on the next query instead
  const run = async <T>(
    client: pg.Pool | pg.PoolClient,
    text: string,
    params?: readonly unknown[],
    options?: { name?: string },
  ) => {
    const values = params as unknown[] | undefined;
    const r = await (options?.name
      ? client.query({ name: options.name, text, values })
      : client.query(text, values));
    return { rows: r.rows as T[], rowCount: r.rowCount ?? 0 };
  };
  return {
    mode: 'server',
    schema,
    query: (text, params, options) => run(pool, text, params, options),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({ query: (text, params, options) => run(client, text, params, options) });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    async exec(text) {
      await pool.query(text);
    },
    bossOptions: () => ({ connectionString: url, schema: `${schema}_boss`, max: 4 }),
    close: () => pool.end(),
  };
}

async function openEmbedded(dataDir: string, schema: string): Promise<PostgresStore> {
  if (!dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir);
  await db.exec(`CREATE SCHEMA IF NOT EXISTS ${schema}; SET search_path TO ${schema}`);
  const wrap = (r: { rows: unknown[]; affectedRows?: number }) => ({
    rows: r.rows,
    rowCount: r.affectedRows || r.rows.length,
  });
  const copy =
    (tx: Pick<PGlite, 'query'>) => async (table: string, columns: readonly string[], rows: string) => {
      if (rows === '') return;
      const names = [assertIdentifier(table, 'table'), ...columns.map((c) => assertIdentifier(c, 'column'))];
      await tx.query(`COPY ${names[0]} (${names.slice(1).join(', ')}) FROM '/dev/blob'`, [], {
        blob: new Blob([rows]),
      });
    };
  return {
    mode: 'embedded',
    schema,
    async query<T>(text: string, params?: readonly unknown[]) {
      return wrap(await db.query(text, params as unknown[] | undefined)) as SqlResult<T>;
    },
    copyFrom: copy(db),
    transaction(fn) {
      return db.transaction((tx) =>
        fn({
          async query<T>(text: string, params?: readonly unknown[]) {
            return wrap(await tx.query(text, params as unknown[] | undefined)) as SqlResult<T>;
          },
          copyFrom: copy(tx),
        }),
      );
    },
    async exec(text) {
      await db.exec(text);
    },
    bossOptions: () => ({ db: fromPglite(db), backend: 'pglite', schema: `${schema}_boss` }),
    close: () => db.close(),
  };
}
