import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { Transform } from 'node:stream';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { exportConsent } from '../engine/consent/index.ts';
import {
  ATTRIBUTE_TYPES,
  defineAttributes,
  eraseContact,
  findContactIdsByExternalId,
  findContactIdsByPhone,
  getContact,
  listAttributes,
  normalizePhone,
} from '../engine/contacts/index.ts';
import { importContacts, importErrors, importEvents } from '../engine/imports/index.ts';
import { ValidationError } from '../engine/validation.ts';
import { print, withRuntime } from './core.ts';
import { resolveWorkspace, WORKSPACE_OPTION } from './workspace.ts';

/** A byte-based progress bar for streamed file imports. */
export function importBar(label: string, total: number) {
  const progress = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {value}/{total} {unit} | {rows} rows`,
      hideCursor: true,
      noTTYOutput: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  progress.start(total, 0, { rows: 0, unit: 'bytes' });
  return progress;
}

function explain(error: unknown): never {
  if (error instanceof ValidationError)
    throw new Error(
      `${error.message}\n${error.errors.map((e) => `  ${e.path || '/'}: ${e.message}`).join('\n')}`,
    );
  throw error;
}

export function registerContactCommands(program: Command): void {
  const importCommand = program
    .command('import')
    .description('Import contacts (CSV) or events (NDJSON) from a file');

  importCommand
    .command('contacts')
    .description(
      'Import contacts from a CSV file (header row first), streamed; bad rows are reported, good rows land',
    )
    .argument('<file>', 'CSV file (UTF-8)')
    .option(...WORKSPACE_OPTION)
    .option(
      '--map <mapping>',
      'column=target pairs, comma-separated; targets: phone, external_id, language, timezone, last_seen_at, tags, lists, attributes.NAME, consent.CHANNEL.PURPOSE, ignore (columns named like a target map themselves)',
    )
    .option('--batch <n>', 'contacts per write', '10000')
    .option('--errors <n>', 'how many row errors to print', '20')
    .action(
      async (file: string, options: { workspace?: string; map?: string; batch: string; errors: string }) => {
        await withRuntime(async (runtime) => {
          const workspace = await resolveWorkspace(runtime, options.workspace);
          const size = statSync(file).size;
          const progress = process.stderr.isTTY ? importBar('contacts', size) : undefined;
          const job = await importContacts(runtime, workspace, createReadStream(file), {
            mapping: options.map,
            fileName: basename(file),
            bytesTotal: size,
            batchSize: Number(options.batch),
            onProgress: (j) => progress?.update(j.bytes_read, { rows: j.rows_processed }),
          }).catch(explain);
          progress?.update(size, { rows: job.rows_processed });
          progress?.stop();
          const errors = await importErrors(runtime, workspace.id, job.id, { limit: Number(options.errors) });
          print({
            job: job.id,
            status: job.status,
            error: job.error,
            rows: job.rows_processed,
            imported: job.rows_imported,
            rejected: job.rows_rejected,
            created: job.contacts_created,
            updated: job.contacts_updated,
            unchanged: job.contacts_unchanged,
            first_errors: errors,
            all_errors: `GET /v1/imports/${job.id}/errors?format=csv`,
          });
          if (job.status === 'failed') process.exitCode = 1;
        });
      },
    );

  importCommand
    .command('events')
    .description(
      'Import events from an NDJSON file (one {id, contact, name, timestamp, properties} per line)',
    )
    .argument('<file>', 'NDJSON file')
    .option(...WORKSPACE_OPTION)
    .option('--batch <n>', 'events per batch (each batch is all-or-nothing; at most 10000)', '5000')
    .action(async (file: string, options: { workspace?: string; batch: string }) => {
      await withRuntime(async (runtime) => {
        const workspace = await resolveWorkspace(runtime, options.workspace);
        const size = statSync(file).size;
        const progress = process.stderr.isTTY ? importBar('events', size) : undefined;
        let bytes = 0;
        const counter = new Transform({
          transform(chunk: Buffer, _e, done) {
            bytes += chunk.length;
            done(null, chunk);
          },
        });
        const result = await importEvents(runtime, workspace, createReadStream(file).pipe(counter), {
          batchSize: Number(options.batch),
          onProgress: (lines) => progress?.update(bytes, { rows: lines }),
        });
        progress?.update(size, { rows: result.lines });
        progress?.stop();
        print(result);
        if (result.rejected_batches) process.exitCode = 1;
      });
    });

  const contacts = program.command('contacts').description('Look up and erase contacts');
  contacts
    .command('show')
    .description('Show a contact (by id, phone or --external-id) with its consent history')
    .argument('<key>', 'contact id (ct_...), a phone number, or an external id with --external-id')
    .option(...WORKSPACE_OPTION)
    .option('--external-id', 'the key is an external id')
    .action(async (key: string, options: { workspace?: string; externalId?: boolean }) => {
      await withRuntime(async (runtime) => {
        const workspace = await resolveWorkspace(runtime, options.workspace);
        let id: string | undefined = key;
        if (options.externalId)
          id = (await findContactIdsByExternalId(runtime, workspace.id, [key])).get(key);
        else if (!key.startsWith('ct_')) {
          const phone = normalizePhone(key, workspace.default_region);
          if (!phone.ok) throw new Error(`${key} is not a contact id, and as a phone it ${phone.reason}`);
          id = (await findContactIdsByPhone(runtime, workspace.id, [phone.e164])).get(phone.e164);
        }
        const contact = id ? await getContact(runtime, workspace.id, id) : undefined;
        if (!contact) throw new Error(`no contact ${key} in workspace ${workspace.id}`);
        const consent = await exportConsent(runtime.pg, workspace.id, contact.id);
        print({ ...contact, consent_history: consent.history });
      });
    });
  contacts
    .command('erase')
    .description('GDPR erase: remove every row about a contact from every store')
    .argument('<id>', 'contact id (ct_...)')
    .option(...WORKSPACE_OPTION)
    .option('--yes', 'do it (without --yes, only says what would be erased)')
    .action(async (id: string, options: { workspace?: string; yes?: boolean }) => {
      await withRuntime(async (runtime) => {
        const workspace = await resolveWorkspace(runtime, options.workspace);
        const contact = await getContact(runtime, workspace.id, id);
        if (!options.yes) {
          print(
            contact
              ? `would erase ${id} (${contact.phone ?? contact.external_id}); run again with --yes`
              : `no contact ${id}`,
          );
          return;
        }
        print(await eraseContact(runtime, workspace.id, id));
      });
    });

  const attributes = program.command('attributes').description('The workspace attribute schema');
  attributes
    .command('list')
    .description('List declared attributes')
    .option(...WORKSPACE_OPTION)
    .action(async (options: { workspace?: string }) => {
      await withRuntime(async (runtime) => {
        const workspace = await resolveWorkspace(runtime, options.workspace);
        print(await listAttributes(runtime.pg, workspace.id));
      });
    });
  attributes
    .command('define')
    .description(`Declare an attribute (types: ${ATTRIBUTE_TYPES.join(', ')}); a type cannot change later`)
    .argument('<name>', 'attribute name, [a-z_][a-z0-9_]*')
    .argument('<type>', ATTRIBUTE_TYPES.join(' | '))
    .option(...WORKSPACE_OPTION)
    .option('--description <text>', 'what it means')
    .action(async (name: string, type: string, options: { workspace?: string; description?: string }) => {
      await withRuntime(async (runtime) => {
        const workspace = await resolveWorkspace(runtime, options.workspace);
        const all = await defineAttributes(
          runtime.pg,
          workspace.id,
          [{ name, type, description: options.description }],
          {
            name: () => 'name',
            type: () => 'type',
          },
        ).catch(explain);
        print(all.find((a) => a.name === name));
      });
    });
}
