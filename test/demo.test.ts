import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningDemo, runCampaignDemo } from '../dashboards/demo.ts';
import { campaignProgress } from '../engine/campaigns/control.ts';
import { getCampaign } from '../engine/campaigns/model.ts';
import { getContacts, normalizePhone } from '../engine/contacts/index.ts';
import {
  clearWorkspaceData,
  ensureDemoWorkspace,
  generateDemo,
  workspaceCounts,
} from '../engine/demo/index.ts';
import { failuresByCode, funnel } from '../engine/metrics/index.ts';
import { listSenders } from '../engine/senders.ts';
import { createWorkspace, type Workspace } from '../engine/workspaces.ts';
import { openTestRuntime, type TestRuntime } from './helpers/runtime.ts';

describe('demo data', () => {
  let runtime: TestRuntime;
  let a: Workspace;
  let b: Workspace;
  const until = new Date('2026-06-01T00:00:00Z');
  beforeAll(async () => {
    runtime = await openTestRuntime();
    a = await createWorkspace(runtime.pg, { name: 'A', defaultRegion: 'IN' });
    b = await createWorkspace(runtime.pg, { name: 'B', defaultRegion: 'IN' });
  });
  afterAll(async () => runtime?.close());

  it('is deterministic, realistic, and spread over countries with valid phones and zones', async () => {
    const first = await generateDemo(runtime, a, { contacts: 300, days: 14, seed: 7, until, chunk: 120 });
    const second = await generateDemo(runtime, b, { contacts: 300, days: 14, seed: 7, until, chunk: 300 });
    expect(first.events).toBeGreaterThan(300);
    expect({ ...second, workspace_id: '', seconds: 0 }).toEqual({ ...first, workspace_id: '', seconds: 0 });
    expect(Object.keys(first.contacts_by_country).length).toBeGreaterThanOrEqual(6);
    expect(first.consent_whatsapp_marketing.opted_in).toBeGreaterThan(
      first.consent_whatsapp_marketing.opted_out,
    );
    expect(first.consent_whatsapp_marketing.opted_out).toBeGreaterThan(0);
    const ids = await runtime.ch.rows<{ contact_id: string }>(
      `SELECT contact_id FROM ${runtime.ch.database}.contacts FINAL WHERE workspace_id = {ws:String} LIMIT 50`,
      { ws: a.id },
    );
    const contacts = await getContacts(
      runtime,
      a.id,
      ids.map((r) => r.contact_id),
    );
    for (const contact of contacts) {
      const phone = normalizePhone(contact.phone!, 'IN');
      expect(phone.ok && phone.e164 === contact.phone && phone.country === contact.country).toBe(true);
      expect(contact.timezone).toMatch(/\//);
      expect(Object.keys(contact.attributes)).toEqual(
        expect.arrayContaining(['plan', 'city', 'age', 'birthday', 'interests', 'lifetime_value']),
      );
    }
    expect(
      new Set(
        (
          await runtime.ch.rows<{ phone: string }>(
            `SELECT phone FROM ${runtime.ch.database}.contacts FINAL WHERE workspace_id = {ws:String}`,
            { ws: a.id },
          )
        ).map((r) => r.phone),
      ).size,
    ).toBe(300);
  });

  it("app opens cluster around each contact's local hour (a send-time signal)", async () => {
    // Spread of open hours per contact: in local time it is narrow; in UTC, across zones, it is not.
    const [row] = await runtime.ch.rows<{ local_spread: number; utc_spread: number }>(
      `SELECT avg(local_sd) AS local_spread, stddevPop(utc_mean) AS utc_spread FROM (
         SELECT e.contact_id, stddevPop(toHour(toTimeZone(e.ts, c.timezone))) AS local_sd, avg(toHour(e.ts)) AS utc_mean
           FROM ${runtime.ch.database}.events e
           JOIN (SELECT contact_id, timezone FROM ${runtime.ch.database}.contacts FINAL WHERE workspace_id = {ws:String}) c USING contact_id
          WHERE e.workspace_id = {ws:String} AND e.name = 'app_open'
          GROUP BY e.contact_id HAVING count() >= 5)
       SETTINGS allow_nonconst_timezone_arguments = 1`,
      { ws: a.id },
    );
    expect(row!.local_spread).toBeLessThan(2.5);
    expect(row!.utc_spread).toBeGreaterThan(3);
  });

  it('clearing a workspace removes its data only', async () => {
    await clearWorkspaceData(runtime, b.id);
    expect(await workspaceCounts(runtime, b.id)).toEqual({ contacts: 0, events: 0 });
    expect((await workspaceCounts(runtime, a.id)).contacts).toBe(300);
  });
});

describe('the live demo: simulator, broadcast, statuses and dashboard', () => {
  let runtime: TestRuntime;
  let demo: RunningDemo | undefined;
  beforeAll(async () => {
    runtime = await openTestRuntime();
  });
  afterAll(async () => {
    await demo?.close();
    await runtime?.close();
  });

  it('sends to every consenting contact and shows reads, replies, STOP opt-outs, failures and purchases', async () => {
    const { workspace } = await ensureDemoWorkspace(runtime);
    await generateDemo(runtime, workspace, { contacts: 1_000, days: 14, seed: 3 });
    demo = await runCampaignDemo(runtime, workspace, { port: 0, settleTimeoutMs: 60_000, log: () => {} });
    const campaignId = /\/dashboards\/campaigns\/([^#]+)#token=/.exec(demo.url)?.[1];
    expect(campaignId).toBeDefined();
    const progress = await campaignProgress(runtime.pg, workspace.id, campaignId!);
    expect(progress.state).toBe('completed');
    expect(progress.counts.queued + progress.counts.sending).toBe(0);
    const f = await funnel(runtime, workspace.id, { campaignId });
    expect(f.sent).toBeGreaterThan(600);
    expect(f.delivered).toBeGreaterThan(f.sent * 0.8);
    expect(f.read).toBeGreaterThan(0);
    expect(f.replied).toBeGreaterThan(0);
    // the simulator's people who stopped marketing fail with 131050; annoyed readers reply STOP
    const failures = await failuresByCode(runtime, workspace.id, { campaignId });
    expect(failures.map((x) => x.error_code)).toContain(131050);
    const { rows } = await runtime.pg.query<{ n: string }>(
      `SELECT count(*) AS n FROM consent_records WHERE workspace_id = $1 AND status = 'opted_out' AND actor = 'contact'
         AND created_at > now() - interval '10 minutes'`,
      [workspace.id],
    );
    expect(Number(rows[0]!.n)).toBeGreaterThan(0);
    const [conversions] = await runtime.ch.rows<{ n: string }>(
      `SELECT count() AS n FROM ${runtime.ch.database}.conversions WHERE workspace_id = {w:String} AND campaign_id = {c:String}`,
      { w: workspace.id, c: campaignId },
    );
    expect(Number(conversions!.n)).toBeGreaterThan(0);
    // the printed page is served (its data needs the token in the fragment, checked by the browser test)
    const page = await fetch(demo.url.split('#')[0]!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
  });

  it('runs again on the same data: the demo number is reused and the new broadcast completes', async () => {
    const { workspace } = await ensureDemoWorkspace(runtime);
    await demo?.close();
    demo = await runCampaignDemo(runtime, workspace, { port: 0, settleTimeoutMs: 60_000, log: () => {} });
    const campaignId = /\/dashboards\/campaigns\/([^#]+)#token=/.exec(demo.url)?.[1];
    const campaign = await getCampaign(runtime.pg, workspace.id, campaignId!);
    expect(campaign?.name).toBe('Spring sale broadcast #2');
    expect((await campaignProgress(runtime.pg, workspace.id, campaignId!)).state).toBe('completed');
    const senders = await listSenders(runtime.pg, workspace.id);
    expect(senders.map((x) => x.name)).toEqual(['Demo number (simulator)']);
  });
});
