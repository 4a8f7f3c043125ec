import type { Runtime } from '../runtime.ts';
import { assertIdentifier } from '../stores/clickhouse.ts';
import { batchesSettled } from '../webhooks/batches-in-flight.ts';
import { forgetWorkspaceIdentities } from './identity-cache.ts';
import { loadContactRows } from './store.ts';

export interface EraseReport {
  contactId: string;
  found: boolean;
  clickhouseTables: string[];
  postgresTables: string[];
}

/**
 * GDPR erase: removes every row about a contact, in every table that has a `contact_id` column
 * (found from the catalogs, so tables added by later migrations are covered without a change here),
 * plus provider statuses addressed to the contact's phone. ClickHouse rows go with lightweight
 * DELETE: they stop being visible at once and are dropped physically at the next merge of their
 * parts. Postgres rows are deleted in one transaction.
 */
export async function eraseContact(
  runtime: Runtime,
  workspaceId: string,
  contactId: string,
): Promise<EraseReport> {
  const { ch, pg } = runtime;
  const row = (await loadContactRows(ch, workspaceId, [contactId])).get(contactId);
  const phones = new Set<string>();
  if (row?.phone) phones.add(row.phone);
  const identities = await ch.rows<{ kind: string; value: string }>(
    `SELECT kind, value FROM ${ch.database}.contact_identities
      WHERE workspace_id = {ws:String} AND contact_id = {id:String}`,
    { ws: workspaceId, id: contactId },
  );
  for (const identity of identities) if (identity.kind === 'phone') phones.add(identity.value);

  const tables = await ch.rows<{ table: string }>(
    `SELECT c.table AS table FROM system.columns c JOIN system.tables t ON t.database = c.database AND t.name = c.table
      WHERE c.database = {db:String} AND c.name = 'contact_id' AND t.engine LIKE '%MergeTree%'
        AND t.name NOT LIKE '.inner%' ORDER BY c.table`,
    { db: ch.database },
  );
  const hasTable = async (name: string) =>
    (
      await ch.rows('SELECT 1 FROM system.tables WHERE database = {db:String} AND name = {name:String}', {
        db: ch.database,
        name,
      })
    ).length > 0;

  // Statuses carry no contact id: match them through our sends and the recipient's phone (WhatsApp
  // reports it without the +). Done before `sends` loses the rows that link them.
  if (await hasTable('message_statuses')) {
    const recipients = [...phones].flatMap((p) => [p, p.replace(/^\+/, '')]);
    const viaSends = (await hasTable('sends'))
      ? `OR send_id IN (SELECT send_id FROM ${ch.database}.sends WHERE workspace_id = {ws:String} AND contact_id = {id:String})
         OR provider_message_id IN (SELECT provider_message_id FROM ${ch.database}.sends
              WHERE workspace_id = {ws:String} AND contact_id = {id:String} AND provider_message_id != '')`
      : '';
    await ch.command(
      `DELETE FROM ${ch.database}.message_statuses
        WHERE workspace_id = {ws:String} AND (recipient IN {recipients:Array(String)} ${viaSends})`,
      { ws: workspaceId, id: contactId, recipients },
    );
  }
  // Payloads not yet processed that name the person were received before this erase: they are marked
  // so the processor drops what they say about these phones and empties them once handled (else an
  // inbound message in one would create the contact again). On a PostgreSQL server this statement
  // waits for any batch holding such a payload to commit; on PGlite, for this process's batch in
  // flight. Either way that batch's writes land before the deletes below.
  const digits = [...new Set([...phones].map((p) => p.replace(/^\+/, '')))];
  const hasInbox = await pgTableExists(runtime, 'webhook_inbox');
  if (hasInbox && digits.length) {
    await pg.query(
      `UPDATE webhook_inbox
          SET erased_phones = ARRAY(SELECT DISTINCT unnest(coalesce(erased_phones, '{}') || $2::text[]))
        WHERE workspace_id = $1 AND processed_at IS NULL
          AND EXISTS (SELECT 1 FROM unnest($2::text[]) AS d
                       WHERE position(convert_to('"' || d || '"', 'UTF8') IN body) > 0
                          OR position(convert_to('"+' || d || '"', 'UTF8') IN body) > 0)`,
      [workspaceId, digits],
    );
    await batchesSettled(runtime);
  }
  // Cached identities must not route new events to the erased contact (cleared again at the end, for
  // any event batch that resolved it while the deletes ran).
  forgetWorkspaceIdentities(runtime, workspaceId);
  const clickhouseTables: string[] = [];
  for (const { table } of tables) {
    const name = assertIdentifier(table, 'table');
    await deleteRows(runtime, name, 'workspace_id = {ws:String} AND contact_id = {id:String}', {
      ws: workspaceId,
      id: contactId,
    });
    clickhouseTables.push(name);
  }
  if (!clickhouseTables.includes('message_statuses')) clickhouseTables.push('message_statuses');

  const pgTables = await pg.query<{ table_name: string; scoped: boolean }>(
    `SELECT c.table_name, EXISTS (SELECT 1 FROM information_schema.columns w
              WHERE w.table_schema = c.table_schema AND w.table_name = c.table_name AND w.column_name = 'workspace_id') AS scoped
       FROM information_schema.columns c JOIN information_schema.tables t
         ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
      WHERE c.table_schema = $1 AND c.column_name = 'contact_id' ORDER BY c.table_name`,
    [pg.schema],
  );
  const postgresTables: string[] = [];
  const hasTierLog = await pgTableExists(runtime, 'throttle_portfolio_recipients');
  await pg.transaction(async (tx) => {
    // Provider payloads name the person by phone (wa_id, from, recipient_id) and carry their messages.
    // Handled ones are emptied, their hash kept so a replay is still known as one; pending ones were
    // marked above (a payload that arrives after this erase is a new message, processed as any).
    if (hasInbox && digits.length) {
      await tx.query(
        `UPDATE webhook_inbox SET body = '\\x7b7d'::bytea
          WHERE workspace_id = $1 AND processed_at IS NOT NULL AND body <> '\\x7b7d'::bytea
            AND EXISTS (SELECT 1 FROM unnest($2::text[]) AS d
                         WHERE position(convert_to('"' || d || '"', 'UTF8') IN body) > 0
                            OR position(convert_to('"+' || d || '"', 'UTF8') IN body) > 0)`,
        [workspaceId, digits],
      );
      postgresTables.push('webhook_inbox');
    }
    // The tier's rolling 24 h count of unique recipients keeps its size (the provider counted them)
    // but not the number: a one-way digest stands in for it.
    if (hasTierLog && phones.size) {
      await tx.query(
        `UPDATE throttle_portfolio_recipients SET recipient = 'erased:' || md5(recipient)
          WHERE recipient = ANY($1::text[])`,
        [[...phones, ...digits]],
      );
      postgresTables.push('throttle_portfolio_recipients');
    }
    for (const { table_name, scoped } of pgTables.rows) {
      const name = assertIdentifier(table_name, 'table');
      await tx.query(
        scoped
          ? `DELETE FROM ${name} WHERE workspace_id = $1 AND contact_id = $2`
          : `DELETE FROM ${name} WHERE contact_id = $2 AND $1::text IS NOT NULL`,
        [workspaceId, contactId],
      );
      postgresTables.push(name);
    }
  });
  forgetWorkspaceIdentities(runtime, workspaceId);
  runtime.log.info({ workspaceId, contactId, clickhouseTables, postgresTables }, 'contact erased');
  return { contactId, found: row !== undefined, clickhouseTables, postgresTables };
}

async function pgTableExists(runtime: Runtime, name: string): Promise<boolean> {
  const { rows } = await runtime.pg.query<{ present: boolean }>(
    'SELECT to_regclass($1) IS NOT NULL AS present',
    [name],
  );
  return rows[0]?.present === true;
}

/**
 * Deletes rows from a ClickHouse table: a lightweight DELETE, or, where a table does not allow one
 * (projections, some engines), a synchronous mutation.
 */
export async function deleteRows(
  runtime: Runtime,
  table: string,
  where: string,
  params: Record<string, unknown>,
): Promise<void> {
  const { ch } = runtime;
  const name = `${ch.database}.${assertIdentifier(table, 'table')}`;
  try {
    await ch.command(`DELETE FROM ${name} WHERE ${where}`, params);
  } catch (error) {
    runtime.log.warn({ table, err: error }, 'lightweight delete refused; running a mutation');
    await ch.command(`ALTER TABLE ${name} DELETE WHERE ${where} SETTINGS mutations_sync = 2`, params);
  }
}
