import { setCampaignGoal } from '../engine/metrics/index.ts';
import type { Runtime } from '../engine/runtime.ts';

/**
 * Synthetic campaign facts written straight into the ClickHouse tables dispatch and webhooks fill
 * (sends, message_statuses, campaign_audience, events). Deterministic in `seed`, generated inside
 * ClickHouse (INSERT ... SELECT FROM numbers()) so a million sends take seconds. For tests, the
 * benchmark and screenshots; the demo uses the real engine instead.
 */
export interface CampaignFixture {
  workspaceId: string;
  campaignId: string;
  name?: string;
  sends: number;
  /** Share of the audience held out (not sent to). */
  holdoutShare?: number;
  seed?: number;
  /** ISO launch day; sends spread over `days` days from its midnight, at the hours a model would pick. */
  launchedAt?: string;
  days?: number;
  /** Scales every engagement probability (read, reply, conversion), to make data differ. */
  engagement?: number;
}

export async function seedCampaignFixture(runtime: Runtime, fixture: CampaignFixture): Promise<void> {
  const { ch } = runtime;
  const db = ch.database;
  // The goal the conversions view credits purchases to (campaigns record it at launch).
  await setCampaignGoal(runtime, fixture.workspaceId, fixture.campaignId, {
    event: 'purchase',
    windowSeconds: 72 * 3600,
  });
  const holdoutShare = fixture.holdoutShare ?? 0.1;
  const holdoutN = Math.round((fixture.sends * holdoutShare) / (1 - holdoutShare));
  const params = {
    w: fixture.workspaceId,
    c: fixture.campaignId,
    name: fixture.name ?? fixture.campaignId,
    n: fixture.sends,
    hn: holdoutN,
    seed: fixture.seed ?? 1,
    launched: (fixture.launchedAt ?? '2026-11-02T00:00:00.000Z').replace('T', ' ').replace('Z', ''),
    days: fixture.days ?? 3,
    eng: fixture.engagement ?? 1,
  };
  // u(tag): a uniform draw in [0, 1) per row and purpose.
  const u = (tag: string) => `(cityHash64({seed:UInt64}, number, '${tag}') % 1000000) / 1000000.0`;
  await ch.command(
    `INSERT INTO ${db}.sends (workspace_id, send_id, campaign_id, campaign_name, template_name, template_category,
       sender_id, contact_id, phone, country, provider_message_id, outcome, error_code, sent_at, exploration, propensity)
     SELECT {w:String}, concat('snd_', {c:String}, '_', toString(number)), {c:String}, {name:String},
            ['spring_sale', 'spring_sale_v2', 'loyalty_nudge'][1 + cityHash64({seed:UInt64}, number, 'tpl') % 3],
            'marketing', 'sdr_fixture', concat('ct_', {c:String}, '_', toString(number)),
            concat('+9198', leftPad(toString(number), 8, '0')),
            ['IN', 'IN', 'IN', 'BR', 'ID', 'MX', 'US'][1 + cityHash64({seed:UInt64}, number, 'cc') % 7],
            if(refused, '', concat('wamid.', {c:String}, '.', toString(number))),
            if(refused, 'failed', 'accepted'), if(refused, [131049, 131026, 130429][1 + number % 3], 0),
            toStartOfDay(toDateTime64({launched:String}, 3, 'UTC')) + toIntervalDay(number % {days:UInt32})
              + toIntervalHour(if(explore, cityHash64({seed:UInt64}, number, 'hr') % 24,
                                  [9, 10, 11, 12, 18, 19, 20][1 + cityHash64({seed:UInt64}, number, 'hr') % 7]))
              + toIntervalMillisecond(cityHash64({seed:UInt64}, number, 'ms') % 3600000),
            explore, if(explore, 1 / 24, 0.95)
     FROM (SELECT number, ${u('refuse')} < 0.02 AS refused, ${u('explore')} < 0.1 AS explore FROM numbers({n:UInt64}))`,
    params,
  );
  await ch.command(
    `INSERT INTO ${db}.campaign_audience (workspace_id, campaign_id, contact_id, holdout, excluded_reason, launched_at)
     SELECT {w:String}, {c:String}, concat('ct_', {c:String}, '_', toString(number)), 0, '', toDateTime64({launched:String}, 3, 'UTC')
     FROM numbers({n:UInt64})
     UNION ALL
     SELECT {w:String}, {c:String}, concat('ct_', {c:String}, '_h', toString(number)), 1, 'holdout', toDateTime64({launched:String}, 3, 'UTC')
     FROM numbers({hn:UInt64})`,
    params,
  );
  // Statuses: delivered for most accepted sends, read and replied for a share, failed for the rest.
  await ch.command(
    `INSERT INTO ${db}.message_statuses (workspace_id, provider_message_id, send_id, status, ts, error_code, error_title,
       pricing_category, billable)
     SELECT workspace_id, provider_message_id, send_id, st.1, sent_at + toIntervalMillisecond(st.2), st.3, st.4,
            'marketing', if(st.1 = 'delivered', 1, 0)
     FROM (
       SELECT workspace_id, provider_message_id, send_id, sent_at, country,
              (cityHash64({seed:UInt64}, send_id, 'd') % 1000) / 1000.0 AS ud,
              (cityHash64({seed:UInt64}, send_id, 'r') % 1000) / 1000.0 AS ur,
              (cityHash64({seed:UInt64}, send_id, 'p') % 1000) / 1000.0 AS up,
              toUInt64(2000 + cityHash64({seed:UInt64}, send_id, 'dl') % 20000) AS delivered_ms,
              toUInt64(exp(5 + ((cityHash64({seed:UInt64}, send_id, 'rt') % 1000) / 1000.0) * 6) * 1000) AS read_ms,
              multiIf(country = 'IN', 0.62, country = 'BR', 0.55, country = 'US', 0.4, 0.5) * {eng:Float64}
                * multiIf(toHour(sent_at) BETWEEN 18 AND 21, 1.25, toHour(sent_at) BETWEEN 9 AND 12, 1.05,
                          toHour(sent_at) < 7, 0.55, 0.85) AS read_p
       FROM ${db}.sends FINAL WHERE workspace_id = {w:String} AND campaign_id = {c:String} AND outcome = 'accepted'
     )
     ARRAY JOIN arrayConcat(
       if(ud < 0.94, [('delivered', delivered_ms, toUInt32(0), '')],
          [('failed', delivered_ms, [131026, 131049, 131047][1 + cityHash64(send_id) % 3], 'Message undeliverable')]),
       if(ud < 0.94 AND ur < read_p, [('read', delivered_ms + read_ms, toUInt32(0), '')], []),
       if(ud < 0.94 AND ur < read_p AND up < 0.18 * {eng:Float64}, [('replied', delivered_ms + read_ms * 2, toUInt32(0), '')], [])
     ) AS st`,
    params,
  );
  // Conversions: readers buy more than the rest; the holdout converts at a base rate.
  await ch.command(
    `INSERT INTO ${db}.events (workspace_id, name, contact_id, ts, event_id, properties)
     SELECT {w:String}, 'purchase', contact_id, ts, concat('ev_', contact_id, '_', {c:String}),
            concat('{"revenue":', toString(round(10 + (cityHash64({seed:UInt64}, contact_id, 'amt') % 9000) / 100.0, 2)), '}')
     FROM (
       SELECT s.contact_id AS contact_id, s.sent_at + toIntervalSecond(600 + cityHash64({seed:UInt64}, s.contact_id, 'ct') % 172800) AS ts,
              (cityHash64({seed:UInt64}, s.contact_id, 'cv') % 10000) / 10000.0 AS uc, m.was_read AS was_read
       FROM ${db}.sends AS s FINAL
       LEFT JOIN (SELECT provider_message_id, max(status IN ('read', 'replied')) AS was_read FROM ${db}.message_statuses
                  WHERE workspace_id = {w:String} GROUP BY provider_message_id) AS m
         ON m.provider_message_id = s.provider_message_id
       WHERE s.workspace_id = {w:String} AND s.campaign_id = {c:String} AND s.outcome = 'accepted'
     ) WHERE uc < if(was_read, 0.09, 0.02) * {eng:Float64}
     UNION ALL
     SELECT {w:String}, 'purchase', concat('ct_', {c:String}, '_h', toString(number)),
            toDateTime64({launched:String}, 3, 'UTC') + toIntervalSecond(600 + cityHash64({seed:UInt64}, number, 'hct') % 172800),
            concat('ev_h_', toString(number), '_', {c:String}), '{"revenue":42.5}'
     FROM numbers({hn:UInt64}) WHERE (cityHash64({seed:UInt64}, number, 'hcv') % 10000) / 10000.0 < 0.03`,
    params,
  );
}
