import type { Runtime } from '../runtime.ts';

export const RATE_CATEGORIES = ['MARKETING', 'UTILITY', 'AUTHENTICATION', 'SERVICE'] as const;
export type RateCategory = (typeof RATE_CATEGORIES)[number];

export interface MessageRate {
  id: string;
  /** null for the rates Chorus ships; a workspace's own rows override them. */
  workspace_id: string | null;
  category: RateCategory;
  /** ISO 3166 alpha-2, or '*' for every other country. */
  country: string;
  currency: string;
  price: number;
  /** YYYY-MM-DD: the rate applies to messages sent on or after this day, until a later row. */
  valid_from: string;
  source: string;
}

export interface RateInput {
  category: RateCategory;
  country: string;
  currency?: string;
  price: number;
  valid_from: string;
  source: string;
}

const COLUMNS = `id::text AS id, workspace_id, category, country, currency, price::float8 AS price,
  to_char(valid_from, 'YYYY-MM-DD') AS valid_from, source`;

/** The workspace's rates and the shipped defaults, newest first within each key. */
export async function listRates(runtime: Runtime, workspaceId: string): Promise<MessageRate[]> {
  const { rows } = await runtime.pg.query<MessageRate>(
    `SELECT ${COLUMNS} FROM message_rates WHERE workspace_id = $1 OR workspace_id IS NULL
      ORDER BY workspace_id NULLS LAST, category, country, valid_from DESC`,
    [workspaceId],
  );
  return rows.map((r) => ({ ...r, price: Number(r.price) }));
}

/** Adds (or replaces, same key and date) a dated rate for the workspace. */
export async function putRate(runtime: Runtime, workspaceId: string, input: RateInput): Promise<MessageRate> {
  const { rows } = await runtime.pg.query<MessageRate>(
    `INSERT INTO message_rates (workspace_id, category, country, currency, price, valid_from, source)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (workspace_id, category, country, valid_from) DO UPDATE
       SET currency = EXCLUDED.currency, price = EXCLUDED.price, source = EXCLUDED.source
     RETURNING ${COLUMNS}`,
    [
      workspaceId,
      input.category,
      input.country.toUpperCase(),
      (input.currency ?? 'USD').toUpperCase(),
      input.price,
      input.valid_from,
      input.source,
    ],
  );
  return { ...rows[0]!, price: Number(rows[0]!.price) };
}

export async function deleteRate(runtime: Runtime, workspaceId: string, id: string): Promise<boolean> {
  const { rowCount } = await runtime.pg.query(
    'DELETE FROM message_rates WHERE workspace_id = $1 AND id = $2',
    [workspaceId, id],
  );
  return rowCount > 0;
}

/**
 * The rate for a message: the workspace's row for its country, else the workspace's '*' row, else
 * the shipped row for the country, else the shipped '*' row; in each, the latest valid_from on or
 * before the day the message was sent.
 */
export function rateFor(
  rates: readonly MessageRate[],
  category: string,
  country: string,
  day: string,
): MessageRate | undefined {
  const cat = category.toUpperCase();
  const tiers: [(r: MessageRate) => boolean][] = [
    [(r) => r.workspace_id !== null && r.country === country],
    [(r) => r.workspace_id !== null && r.country === '*'],
    [(r) => r.workspace_id === null && r.country === country],
    [(r) => r.workspace_id === null && r.country === '*'],
  ];
  for (const [match] of tiers) {
    let best: MessageRate | undefined;
    for (const rate of rates) {
      if (rate.category !== cat || !match(rate) || rate.valid_from > day) continue;
      if (!best || rate.valid_from > best.valid_from) best = rate;
    }
    if (best) return best;
  }
  return undefined;
}
