import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignProgress } from '../engine/campaigns/control.ts';
import { launchCampaign } from '../engine/campaigns/launch.ts';
import { createCampaign } from '../engine/campaigns/model.ts';
import type { CampaignInput } from '../engine/campaigns/types.ts';
import { fitSendTime } from '../engine/sto/fit.ts';
import { createWorkspace } from '../engine/workspaces.ts';
import { type RunningSimulator, startSimulator } from '../simulator/server.ts';
import { createSender, phoneOf, seedContacts } from './helpers/campaigns.ts';
import { openTestRuntime, type TestRuntime } from './helpers/runtime.ts';
import { writeDailySends } from './helpers/sto.ts';

// Campaigns with `schedule: {type: "optimal"}`: each contact's send is queued at the model's hour,
// inside the window and out of quiet hours; bad windows are refused before anything is written.
const PROMO = {
  name: 'promo',
  language: 'en_US',
  category: 'MARKETING',
  components: [{ type: 'BODY' as const, text: 'Hello, our new range is in.' }],
};

describe('optimal send time in campaigns', () => {
  let runtime: TestRuntime;
  let sim: RunningSimulator;
  let ws: string;
  let sender: string;
  const now = new Date('2026-07-01T02:00:00Z');

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, seed: 'sto-campaigns', appSecret: 's', templates: [PROMO] });
    runtime = await openTestRuntime();
    ws = (await createWorkspace(runtime.pg, { name: 'W', timezone: 'UTC' })).id;
    sender = await createSender(runtime, ws, { baseUrl: sim.url, phoneNumberId: '1001' });
    await runtime.pg.query("UPDATE senders SET waba_id = '100000000000001' WHERE workspace_id = $1", [ws]);
    await seedContacts(runtime, ws, [
      { id: 'reader', phone: phoneOf(1), timezone: 'Asia/Kolkata', tags: ['t'] },
      { id: 'newcomer', phone: phoneOf(2), timezone: 'Asia/Kolkata', tags: ['t'] },
      { id: 'night', phone: '+12125550100', country: 'US', timezone: 'America/New_York', tags: ['t'] },
    ]);
    // the reader reads every send at 11:00 Kolkata (05:30Z) and none at 09:00 (03:30Z)
    await writeDailySends(runtime, ws, 'reader', [
      ['05:30', true],
      ['03:30', false],
    ]);
    await fitSendTime(runtime, ws, { until: new Date('2026-06-30T00:00:00Z') });
  });
  afterAll(async () => {
    await runtime?.close();
    await sim?.close();
  });

  const draft = (name: string, window_start: string, window_end: string): CampaignInput => ({
    name,
    sender_id: sender,
    audience: { type: 'tags', tags: ['t'] },
    content: { template: { name: 'promo', language: 'en_US' } },
    schedule: { type: 'optimal', window_start, window_end, exploration_share: 0 },
    settings: { quiet_hours: { start: 21, end: 9 }, frequency_cap: null },
  });

  it("queues each send at the contact's best hour; a contact whose window is all quiet hours is skipped", async () => {
    // 03:00-09:00Z: 08:30-14:30 in Kolkata, 23:00-05:00 in New York (all quiet there)
    const campaign = await createCampaign(
      runtime.pg,
      ws,
      draft('optimal', '2026-07-01T03:00:00Z', '2026-07-01T09:00:00Z'),
      'tester',
    );
    await launchCampaign(runtime, ws, campaign.id, 'tester', { now });
    const { rows } = await runtime.pg.query<{
      contact_id: string;
      state: string;
      skip_reason: string | null;
      not_before: Date;
      exploration: boolean;
    }>(
      'SELECT contact_id, state, skip_reason, not_before, exploration FROM campaign_sends WHERE campaign_id = $1 ORDER BY contact_id',
      [campaign.id],
    );
    const byContact = Object.fromEntries(rows.map((r) => [r.contact_id, r]));
    expect(byContact.reader).toMatchObject({ state: 'queued', exploration: false });
    expect(new Date(byContact.reader!.not_before).toISOString()).toBe('2026-07-01T05:30:00.000Z');
    // no history: the Kolkata cohort, which is the reader alone, so the same hour
    expect(new Date(byContact.newcomer!.not_before).toISOString()).toBe('2026-07-01T05:30:00.000Z');
    expect(byContact.night).toMatchObject({ state: 'skipped', skip_reason: 'window_in_quiet_hours' });
    const progress = await campaignProgress(runtime.pg, ws, campaign.id);
    expect(progress.skipped).toEqual({ window_in_quiet_hours: 1 });
  });

  it('refuses a window under an hour, or with under an hour left, leaving no sends', async () => {
    await expect(
      createCampaign(
        runtime.pg,
        ws,
        draft('short', '2026-07-01T03:00:00Z', '2026-07-01T03:30:00Z'),
        'tester',
      ),
    ).rejects.toMatchObject({
      errors: [{ path: '/body/schedule/window_end', message: 'the window must be at least an hour long' }],
    });
    const late = await createCampaign(
      runtime.pg,
      ws,
      draft('late', '2026-07-01T00:00:00Z', '2026-07-01T02:30:00Z'),
      'tester',
    );
    await expect(launchCampaign(runtime, ws, late.id, 'tester', { now })).rejects.toThrow(
      /less than an hour of the window is left/,
    );
    const { rows } = await runtime.pg.query('SELECT 1 FROM campaign_sends WHERE campaign_id = $1', [late.id]);
    expect(rows).toHaveLength(0);
  });
});
