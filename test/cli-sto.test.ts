import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chorus } from './helpers/cli.ts';

// `chorus sto simulate | fit | evaluate` as a user runs them: the fit on demand, the evaluation as a
// table and as JSON, and bad numbers refused before any work, run in this process.
const dataDir = mkdtempSync(join(tmpdir(), 'chorus-cli-sto-'));

describe('chorus sto', () => {
  const saved = { ...process.env };
  let workspace: string;
  const until = '2026-06-01T00:00:00Z';
  beforeAll(async () => {
    Object.assign(process.env, { CHORUS_DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
    delete process.env.DATABASE_URL;
    delete process.env.CLICKHOUSE_URL;
    workspace = JSON.parse(await chorus('workspace', 'create', '--name', 'STO')).workspace.id;
  }, 60_000);
  afterAll(() => {
    process.env = saved;
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('simulates a history, fits on demand, and evaluates as a table and as JSON', async () => {
    const written = JSON.parse(
      await chorus(
        'sto',
        'simulate',
        '--workspace',
        workspace,
        '--contacts',
        '300',
        '--days',
        '40',
        '--until',
        until,
        '--seed',
        'cli',
      ),
    );
    expect(written.contacts).toBe(300);
    const fit = JSON.parse(await chorus('sto', 'fit', '--workspace', workspace, '--until', until));
    expect(fit).toMatchObject({ workspaceId: workspace, contacts: 300, until: '2026-06-01T00:00:00.000Z' });
    expect(fit.sends).toBeGreaterThan(fit.engaged);

    const args = ['sto', 'evaluate', '--workspace', workspace, '--until', until, '--test-days', '10'];
    const table = await chorus(...args, '--bootstrap', '50');
    expect(table).toContain('send-time evaluation: train before');
    for (const policy of ['model', 'random', 'global_best', 'last_active', 'modal'])
      expect(table).toMatch(new RegExp(`^${policy}\\s`, 'm'));
    expect(table).toContain('lift of the model');

    const report = JSON.parse(await chorus(...args, '--bootstrap', '50', '--json'));
    expect(report.policies.map((p: { policy: string }) => p.policy)).toEqual([
      'model',
      'random',
      'global_best',
      'last_active',
      'modal',
    ]);
    expect(report.test.sends).toBeGreaterThan(0);
    for (const lift of report.lifts) expect(lift.ci).toHaveLength(2);
  }, 300_000);

  it.each([
    [['evaluate', '--test-days', 'abc'], /--test-days/],
    [['evaluate', '--test-days', '0'], /--test-days/],
    [['evaluate', '--bootstrap', 'many'], /--bootstrap/],
    [['evaluate', '--until', 'tomorrow'], /--until/],
    [['fit', '--lookback-days', 'ninety'], /--lookback-days/],
    [['fit', '--cohort', 'city'], /--cohort/],
  ])('refuses sto %j with a clear error', async (args, message) => {
    const [command, ...rest] = args;
    await expect(chorus('sto', command!, '--workspace', workspace, ...rest)).rejects.toThrow(message);
  });
});
