import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { registerCommands } from '../cli/commands.ts';
import { chorus } from './helpers/cli.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'chorus-cli-'));

describe('chorus CLI: contacts, attributes, import', () => {
  const saved = { ...process.env };
  beforeAll(() => {
    Object.assign(process.env, { CHORUS_DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
    delete process.env.DATABASE_URL;
    delete process.env.CLICKHOUSE_URL;
  });
  afterAll(() => {
    process.env = saved;
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('every command describes itself and its options', () => {
    const program = new Command().name('chorus');
    registerCommands(program);
    const find = (path: string[]) =>
      path.reduce<Command | undefined>((c, name) => c?.commands.find((x) => x.name() === name), program);
    for (const path of [
      ['import', 'contacts'],
      ['import', 'events'],
      ['contacts', 'show'],
      ['contacts', 'erase'],
      ['attributes', 'define'],
      ['attributes', 'list'],
      ['demo', 'generate'],
    ]) {
      const command = find(path)!;
      expect(command.description(), path.join(' ')).not.toBe('');
      for (const option of command.options)
        expect(option.description, `${path.join(' ')} ${option.flags}`).not.toBe('');
      expect(command.helpInformation()).toContain('Usage: chorus');
    }
  });

  it('every command of every issue exists, and each command, option and argument explains itself', () => {
    const program = new Command().name('chorus');
    registerCommands(program);
    const walk = (command: Command, path: string[]): string[][] =>
      command.commands.flatMap((sub) => [[...path, sub.name()], ...walk(sub, [...path, sub.name()])]);
    const paths = walk(program, []).map((path) => path.join(' '));
    // The commands the issues name (3: foundation, 4: segments, 6: campaigns, 7: analytics).
    expect(paths).toEqual(
      expect.arrayContaining([
        'serve',
        'worker',
        'migrate',
        'workspace create',
        'key create',
        'import contacts',
        'import events',
        'contacts show',
        'segment count',
        'segment preview',
        'segment sql',
        'segment check',
        'campaign create',
        'campaign launch',
        'campaign pause',
        'campaign resume',
        'campaign cancel',
        'campaign status',
        'sql',
      ]),
    );
    for (const path of walk(program, [])) {
      const command = path.reduce<Command>((c, name) => c.commands.find((x) => x.name() === name)!, program);
      const name = path.join(' ');
      expect(command.description(), name).not.toBe('');
      for (const option of command.options)
        expect(option.description, `${name} ${option.flags}`).not.toBe('');
      for (const argument of command.registeredArguments)
        expect(argument.description, `${name} <${argument.name()}>`).not.toBe('');
      expect(command.helpInformation(), name).toContain(`Usage: chorus ${name}`);
    }
  });

  it('docker-compose.yml runs ClickHouse, PostgreSQL, the API and a worker on commands the CLI has', () => {
    const compose = parse(readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8')) as {
      services: Record<string, { command?: string[]; environment?: Record<string, string> }>;
    };
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining(['clickhouse', 'postgres', 'migrate', 'api', 'worker']),
    );
    for (const name of ['migrate', 'api', 'worker']) {
      const service = compose.services[name]!;
      expect(service.environment, name).toMatchObject({
        CLICKHOUSE_URL: expect.stringContaining('clickhouse:8123'),
        DATABASE_URL: expect.stringContaining('@postgres:5432/'),
      });
      // Commander refuses unknown commands and options: parse without running the action.
      const program = new Command().name('chorus').exitOverride();
      registerCommands(program);
      const [command, ...args] = service.command!;
      const sub = program.commands.find((c) => c.name() === command);
      expect(sub, `${name}: chorus ${command}`).toBeDefined();
      sub!.exitOverride().action(() => undefined);
      expect(
        () => sub!.parse(args, { from: 'user' }),
        `${name}: ${service.command!.join(' ')}`,
      ).not.toThrow();
    }
  });

  it('creates a workspace, declares an attribute, imports a CSV and shows a contact', async () => {
    await chorus('workspace', 'create', '--name', 'CLI', '--region', 'IN');
    const csv = join(dataDir, 'people.csv');
    writeFileSync(csv, 'Mobile,Plan,Note\n98765 43210,pro,x\n12,free,y\n');
    // The only workspace is used without --workspace.
    await chorus('attributes', 'define', 'plan', 'string', '--description', 'plan');
    const imported = JSON.parse(
      await chorus('import', 'contacts', csv, '--map', 'Mobile=phone,Plan=attributes.plan,Note=ignore'),
    );
    expect(imported).toMatchObject({ status: 'completed', imported: 1, rejected: 1, created: 1 });
    expect(imported.first_errors[0]).toMatchObject({ row: 3, column: 'Mobile' });
    const shown = JSON.parse(await chorus('contacts', 'show', '+919876543210'));
    expect(shown).toMatchObject({
      phone: '+919876543210',
      attributes: { plan: 'pro' },
      timezone: 'Asia/Kolkata',
    });
    await expect(
      chorus('import', 'contacts', csv, '--map', 'Mobile=phone,Plan=attributes.tier'),
    ).rejects.toThrow('unknown attribute tier');

    // Segments: count, preview, check and sql on what was imported, reproducibly with --now.
    const now = '2026-03-15T12:00:00Z';
    expect(JSON.parse(await chorus('segment', 'count', 'plan = "pro"', '--now', now))).toMatchObject({
      count: 1,
      now: '2026-03-15T12:00:00.000Z',
    });
    const preview = JSON.parse(await chorus('segment', 'preview', 'plan in ("pro")', '--attributes', 'plan'));
    expect(preview.contacts).toEqual([expect.objectContaining({ attributes: { plan: 'pro' } })]);
    const checked = await chorus('segment', 'check', 'plna = "pro" and\nplan > 3');
    expect(checked).toContain('1:1');
    expect(checked).toContain('did you mean plan');
    expect(checked).toContain('2:1');
    expect(process.exitCode).toBe(1);
    process.exitCode = 0;
    expect(await chorus('segment', 'check', 'plan = "pro"')).toContain('ok: no problems found');
    const sql = await chorus('segment', 'sql', 'plan = "Pr\'o; DROP"', '--now', now);
    expect(sql).toContain('SELECT');
    expect(sql.split('"params"')[0]).not.toContain('DROP');
    expect(sql).toContain("Pr'o; DROP");

    // Campaigns: create from flags, review, a refused launch that changes nothing, status, cancel.
    const workspace = shown.workspace_id as string;
    const draft = JSON.parse(
      await chorus('campaign', 'create', '--workspace', workspace, '--name', 'cli', '--template', 'nope'),
    );
    expect(draft).toMatchObject({ state: 'draft', audience: { type: 'all' } });
    const review = JSON.parse(await chorus('campaign', 'review', '--workspace', workspace, '--id', draft.id));
    expect(review).toMatchObject({ audience_count: 1, can_launch: false });
    await expect(chorus('campaign', 'launch', '--workspace', workspace, '--id', draft.id)).rejects.toThrow(
      /sender_id: a sender is required/,
    );
    const status = JSON.parse(await chorus('campaign', 'status', '--workspace', workspace, '--id', draft.id));
    expect(status).toMatchObject({ state: 'draft', total: 0 });
    const cancelled = JSON.parse(
      await chorus('campaign', 'cancel', '--workspace', workspace, '--id', draft.id, '--reason', 'test'),
    );
    expect(cancelled).toMatchObject({ state: 'cancelled' });
    // Each command opens and closes the embedded stores; a loaded machine needs the margin.
  }, 120_000);
});
