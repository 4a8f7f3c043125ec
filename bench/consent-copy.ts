// Consent writes of a bulk import on PGlite, alone: N records (one WhatsApp marketing opt-in per new
// contact, as bench/ingest's CSV rows carry) copied into consent_records and consent_current in the
// import's chunks (engine/consent/records.ts), with the migrations' schema. Prints µs per row for
// each table. Usage: node bench/consent-copy.ts [--rows N] [--index six-columns]
//   --index six-columns puts back the consent_records index before Postgres 0150 to compare.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RECORD_COLUMNS } from '../engine/consent/records.ts';
import { migratePostgres } from '../engine/stores/migrate.ts';
import { openPostgres } from '../engine/stores/postgres.ts';

const args = process.argv.slice(2);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const ROWS = Number(option('--rows') ?? 100_000);
const CHUNK = 2_000;
const BATCH = 10_000;
const dir = mkdtempSync(join(tmpdir(), 'chorus-consent-'));
const pg = await openPostgres({ dataDir: dir });
try {
  await migratePostgres(pg);
  if (option('--index') === 'six-columns')
    await pg.exec(
      'DROP INDEX consent_records_by_contact; CREATE INDEX consent_records_contact ON consent_records (workspace_id, contact_id, channel, purpose, recorded_at DESC, id DESC)',
    );
  const ws = 'ws_bench_0123456789ab';
  // Contact ids are hashes: spread like the import's.
  const contactId = (i: number) => `ct_${((i * 2654435761) % 4294967296).toString(36).padStart(20, '0')}`;
  let recordsMs = 0;
  let currentMs = 0;
  for (let from = 0; from < ROWS; from += BATCH)
    await pg.transaction(async (tx) => {
      for (let chunk = from; chunk < Math.min(from + BATCH, ROWS); chunk += CHUNK) {
        let records = '';
        let current = '';
        for (let i = chunk; i < Math.min(chunk + CHUNK, ROWS); i++) {
          records += `${i + 1}\t${ws}\t${contactId(i)}\twhatsapp\tmarketing\topted_in\timport:contacts.csv\tconsent.whatsapp.marketing=yes in import:contacts.csv, row ${i + 2}\timport\t2026-12-04T10:00:00.000Z\n`;
          current += `${ws}\t${contactId(i)}\twhatsapp\tmarketing\topted_in\t2026-12-04T10:00:00.000Z\t${i + 1}\n`;
        }
        let started = performance.now();
        await tx.copyFrom!('consent_records', [...RECORD_COLUMNS], records);
        recordsMs += performance.now() - started;
        started = performance.now();
        await tx.copyFrom!(
          'consent_current',
          ['workspace_id', 'contact_id', 'channel', 'purpose', 'status', 'recorded_at', 'record_id'],
          current,
        );
        currentMs += performance.now() - started;
      }
    });
  process.stdout.write(
    `${JSON.stringify({
      rows: ROWS,
      index: option('--index') ?? 'contact_id (0150)',
      records_us_per_row: Math.round((recordsMs * 10_000) / ROWS) / 10,
      current_us_per_row: Math.round((currentMs * 10_000) / ROWS) / 10,
    })}\n`,
  );
} finally {
  await pg.close();
  rmSync(dir, { recursive: true, force: true });
}
