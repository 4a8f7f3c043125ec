/**
 * Review and launch: resolve the audience, freeze it, draw the holdout, keep only contacts with
 * consent, and write the send ledger; or, for a review, report what a launch would do.
 */
import { createHash } from 'node:crypto';
import type { ContactRow as StoredContactRow } from '../contacts/store.ts';
import { listRates, rateFor } from '../metrics/rates.ts';
import type { Runtime } from '../runtime.ts';
import { createSnapshot } from '../segments/audiences.ts';
import { stoChooserWithFallback } from '../sto/index.ts';
import type { SendTimeChooser } from '../sto/types.ts';
import type { Sql } from '../stores/postgres.ts';
import { quietUntil, TIER_LIMITS } from '../throttle/index.ts';
import { isValidTimeZone } from '../workspaces.ts';
import {
  defaultRateTable,
  defaultTemplateCatalog,
  estimateCost,
  missingVariables,
  type RateTable,
  type RenderContact,
  renderContent,
  type TemplateCatalog,
} from './content.ts';
import { loadSender } from './dispatch.ts';
import { requireCampaign, scheduleStart, transition, validateSchedule } from './model.ts';
import { workspaceBestHourChooser } from './send-time-fallback.ts';
import { type Audience, type Campaign, CampaignError, type TemplateCategory } from './types.ts';

/** Resolves a DSL or saved segment to a snapshot; supplied by the segments module. */
export type SegmentSnapshotter = (
  runtime: Runtime,
  workspaceId: string,
  audience: { dsl?: string; segment_id?: string },
  options: { snapshotId: string },
) => Promise<{ snapshot_id: string; count: number }>;

export interface LaunchDeps {
  catalog?: TemplateCatalog;
  rateTable?: RateTable;
  chooser?: SendTimeChooser;
  snapshotSegment?: SegmentSnapshotter;
  now?: Date;
}

const defaultSnapshotter: SegmentSnapshotter = (runtime, workspaceId, audience, options) =>
  createSnapshot(runtime, workspaceId, { dsl: audience.dsl, segment_id: audience.segment_id }, options);

/** The workspace's dated rate table (shipped defaults plus its own rows), as of today. */
async function workspaceRateTable(runtime: Runtime, workspaceId: string, day: string): Promise<RateTable> {
  const rates = await listRates(runtime, workspaceId).catch(() => []);
  if (rates.length === 0) return defaultRateTable;
  return {
    currency: rates[0]!.currency,
    source: 'message_rates (workspace rows over shipped defaults)',
    effective_from: day,
    rate: (country, category) =>
      rateFor(rates, category, country, day)?.price ?? defaultRateTable.rate(country, category),
  };
}

export interface AudienceContact extends RenderContact {
  country: string;
  timezone: string;
}

/** Deterministic holdout draw: the same campaign and contact always land on the same side. */
export function inHoldout(campaignId: string, contactId: string, percent: number): boolean {
  if (percent <= 0) return false;
  const h = createHash('sha256').update(`${campaignId}\u0000${contactId}`).digest();
  return (h.readUInt32BE(0) / 0x1_0000_0000) * 100 < percent;
}

const CONTACT_SELECT = `contact_id,
  argMax(phone, version) AS phone, argMax(external_id, version) AS external_id,
  argMax(country, version) AS country, argMax(language, version) AS language,
  argMax(timezone, version) AS timezone, argMax(attr_strings, version) AS attr_strings,
  argMax(attr_numbers, version) AS attr_numbers, argMax(attr_booleans, version) AS attr_booleans,
  argMax(tags, version) AS tags, argMax(lists, version) AS lists`;

type ContactRow = Pick<
  StoredContactRow,
  | 'contact_id'
  | 'phone'
  | 'external_id'
  | 'country'
  | 'language'
  | 'timezone'
  | 'attr_strings'
  | 'attr_numbers'
  | 'attr_booleans'
>;

/** The frozen audience: the snapshot's contacts with what sending needs. */
async function resolveAudience(
  runtime: Runtime,
  campaign: Campaign,
  deps: LaunchDeps,
  snapshotId: string,
): Promise<AudienceContact[]> {
  const db = runtime.ch.database;
  const audience: Audience = campaign.audience;
  const params: Record<string, unknown> = { ws: campaign.workspace_id, snap: snapshotId };
  let filter = '1';
  if (audience.type === 'segment') {
    const snapshot = deps.snapshotSegment ?? defaultSnapshotter;
    try {
      await snapshot(runtime, campaign.workspace_id, audience, { snapshotId });
    } catch (error) {
      // A DSL that does not check, or a segment that does not exist, is the campaign's fault.
      throw new CampaignError(
        'invalid',
        `the audience segment cannot be resolved: ${(error as Error).message}`,
        [{ path: '/audience', message: (error as Error).message }],
      );
    }
    filter = `contact_id IN (SELECT contact_id FROM ${db}.audience_snapshots WHERE workspace_id = {ws:String} AND snapshot_id = {snap:String})`;
  } else if (audience.type === 'tags') {
    params.values = audience.tags;
    filter = 'hasAny(tags, {values:Array(String)})';
  } else if (audience.type === 'lists') {
    params.values = audience.lists;
    filter = 'hasAny(lists, {values:Array(String)})';
  }
  const rows = await runtime.ch.rows<ContactRow>(
    `SELECT * FROM (
       SELECT ${CONTACT_SELECT}, argMax(deleted, version) AS is_deleted
         FROM ${db}.contacts WHERE workspace_id = {ws:String} GROUP BY contact_id)
     WHERE is_deleted = 0 AND ${filter} ORDER BY contact_id`,
    params,
  );
  return rows.map((r) => ({
    id: r.contact_id,
    phone: r.phone,
    external_id: r.external_id || null,
    country: r.country,
    language: r.language || null,
    timezone: r.timezone,
    attributes: { ...r.attr_strings, ...r.attr_numbers, ...r.attr_booleans },
  }));
}

async function consentOf(sql: Sql, workspaceId: string, channel: string, purpose: string, ids: string[]) {
  const optedIn = new Set<string>();
  for (let i = 0; i < ids.length; i += 5_000) {
    const { rows } = await sql.query<{ contact_id: string }>(
      `SELECT contact_id FROM consent_current WHERE workspace_id = $1 AND channel = $2 AND purpose = $3
         AND status = 'opted_in' AND contact_id = ANY($4::text[])`,
      [workspaceId, channel, purpose, ids.slice(i, i + 5_000)],
    );
    for (const r of rows) optedIn.add(r.contact_id);
  }
  return optedIn;
}

async function cappedContacts(sql: Sql, campaign: Campaign, ids: string[], now: Date): Promise<Set<string>> {
  const cap = campaign.settings.frequency_cap;
  const capped = new Set<string>();
  if (!cap) return capped;
  for (let i = 0; i < ids.length; i += 5_000) {
    const { rows } = await sql.query<{ contact_id: string }>(
      `SELECT contact_id FROM throttle_contacts WHERE workspace_id = $1 AND contact_id = ANY($2::text[])
         AND (SELECT count(*) FROM unnest(marketing_sent_at) t WHERE t > $3::timestamptz - make_interval(days => $4)) >= $5`,
      [campaign.workspace_id, ids.slice(i, i + 5_000), now, cap.days, cap.max],
    );
    for (const r of rows) capped.add(r.contact_id);
  }
  return capped;
}

export interface Review {
  campaign_id: string;
  audience_count: number;
  holdout_count: number;
  eligible_count: number;
  excluded: Record<string, number>;
  after_frequency_cap_count: number;
  template: { name: string; language: string; status: string; category: TemplateCategory } | null;
  cost_estimate: ReturnType<typeof estimateCost>;
  preview: { contact_id: string; phone: string; message: unknown; missing_variables: string[] }[];
  schedule_start: string;
  warnings: { code: string; message: string }[];
  errors: { path: string; message: string }[];
  can_launch: boolean;
}

interface Plan {
  review: Review;
  audience: (AudienceContact & { holdout: boolean; excluded_reason: string })[];
  category: TemplateCategory;
}

async function plan(
  runtime: Runtime,
  campaign: Campaign,
  deps: LaunchDeps,
  snapshotId: string,
): Promise<Plan> {
  const now = deps.now ?? new Date();
  const errors: { path: string; message: string }[] = [];
  const warnings: { code: string; message: string }[] = [];
  errors.push(...validateSchedule(campaign.schedule, '/schedule'));
  if (errors.length === 0) {
    const start = scheduleStart(campaign.schedule, now);
    if (campaign.schedule.type === 'at' && start.getTime() < now.getTime() - 60_000)
      errors.push({
        path: '/schedule/at',
        message: `${campaign.schedule.at} ${campaign.schedule.timezone} is in the past`,
      });
    if (
      campaign.schedule.type === 'optimal' &&
      new Date(campaign.schedule.window_end).getTime() <= now.getTime()
    )
      errors.push({ path: '/schedule/window_end', message: 'the window has already closed' });
    else if (
      campaign.schedule.type === 'optimal' &&
      new Date(campaign.schedule.window_end).getTime() - Math.max(start.getTime(), now.getTime()) < 3_600_000
    )
      errors.push({ path: '/schedule/window_end', message: 'less than an hour of the window is left' });
  }
  const sender = campaign.sender_id ? await loadSender(runtime.pg, campaign.sender_id) : undefined;
  if (!campaign.sender_id) errors.push({ path: '/sender_id', message: 'a sender is required to launch' });
  else if (!sender || sender.workspace_id !== campaign.workspace_id)
    errors.push({ path: '/sender_id', message: `no sender ${campaign.sender_id}` });
  else if (sender.status !== 'active')
    errors.push({ path: '/sender_id', message: `sender ${sender.name} is ${sender.status}` });

  let template: Review['template'] = null;
  let category: TemplateCategory = 'UTILITY';
  if ('template' in campaign.content) {
    const t = campaign.content.template;
    const info = await (deps.catalog ?? defaultTemplateCatalog(sender))
      .find(runtime.pg, campaign.workspace_id, t.name, t.language)
      .catch((error: Error) => {
        errors.push({
          path: '/content/template',
          message: `the template's approval cannot be checked: ${error.message}`,
        });
        return undefined;
      });
    category = info?.category ?? t.category ?? 'MARKETING';
    template = { name: t.name, language: t.language, status: info?.status ?? 'UNKNOWN', category };
    if (!info) {
      if (!errors.some((e) => e.path === '/content/template'))
        errors.push({
          path: '/content/template',
          message: `template ${t.name} (${t.language}) is not known to this workspace`,
        });
    } else if (info.status !== 'APPROVED')
      errors.push({
        path: '/content/template',
        message: `template ${t.name} (${t.language}) is ${info.status}, not APPROVED`,
      });
  }
  if (campaign.channel !== 'whatsapp' && !('text' in campaign.content))
    errors.push({ path: '/content', message: `${campaign.channel} takes text content` });

  const contacts = await resolveAudience(runtime, campaign, deps, snapshotId);
  const purpose = category.toLowerCase();
  const consent = await consentOf(
    runtime.pg,
    campaign.workspace_id,
    campaign.channel,
    purpose,
    contacts.map((c) => c.id),
  );
  const capped =
    category === 'MARKETING'
      ? await cappedContacts(
          runtime.pg,
          campaign,
          contacts.map((c) => c.id),
          now,
        )
      : new Set<string>();
  const excluded: Record<string, number> = {};
  const audience = contacts.map((c) => {
    const holdout = inHoldout(campaign.id, c.id, campaign.holdout_percent);
    const reason = holdout ? 'holdout' : !c.phone ? 'no_phone' : !consent.has(c.id) ? 'no_consent' : '';
    if (reason) excluded[reason] = (excluded[reason] ?? 0) + 1;
    return { ...c, holdout, excluded_reason: reason };
  });
  const eligible = audience.filter((c) => !c.excluded_reason);
  const afterCaps = eligible.filter((c) => !capped.has(c.id)).length;
  if (capped.size)
    warnings.push({
      code: 'frequency_cap',
      message: `${eligible.length - afterCaps} eligible contacts are at the frequency cap and will be skipped`,
    });
  if (eligible.length === 0)
    errors.push({
      path: '/audience',
      message: contacts.length
        ? 'no contact in the audience can be sent to (consent, holdout, phone)'
        : 'the audience is empty',
    });

  if (sender) {
    const limit = TIER_LIMITS[sender.tier] ?? 250;
    if (afterCaps > limit)
      warnings.push({
        code: 'tier_too_small',
        message: `the audience (${afterCaps}) exceeds the ${sender.tier} limit of ${limit} unique users per 24 h: the rest waits for the window to roll`,
      });
    if (sender.quality === 'RED')
      warnings.push({ code: 'quality_red', message: `sender ${sender.name} quality is RED` });
    if (sender.warmup_started_at)
      warnings.push({
        code: 'warmup',
        message: `sender ${sender.name} is warming up: its daily volume is capped`,
      });
  }
  const quiet = campaign.settings.quiet_hours;
  // Shown beside other problems (a review lists them all at once); only a bad schedule has no start.
  const scheduleOk = !errors.some((e) => e.path.startsWith('/schedule'));
  if (quiet && campaign.schedule.type !== 'optimal' && scheduleOk) {
    const start = scheduleStart(campaign.schedule, now);
    const held = eligible.filter((c) => quietUntil(start, c.timezone || 'UTC', quiet)).length;
    if (held)
      warnings.push({
        code: 'quiet_hours',
        message: `${held} contacts are in quiet hours (${quiet.start}:00-${quiet.end}:00 local) at the start and will be held until they end`,
      });
  }
  if (template && template.status !== 'APPROVED')
    warnings.push({
      code: 'template_not_approved',
      message: `template ${template.name} is ${template.status}`,
    });

  const byCountry: Record<string, number> = {};
  for (const c of eligible) if (!capped.has(c.id)) byCountry[c.country] = (byCountry[c.country] ?? 0) + 1;
  const preview = eligible.slice(0, 3).map((c) => ({
    contact_id: c.id,
    phone: c.phone,
    message: renderContent(campaign.content, c),
    missing_variables: missingVariables(campaign.content, c),
  }));
  if (preview.some((p) => p.missing_variables.length))
    warnings.push({
      code: 'missing_variables',
      message: 'some sample contacts lack a variable and have no fallback',
    });

  const start = errors.length ? now : scheduleStart(campaign.schedule, now);
  return {
    category,
    audience,
    review: {
      campaign_id: campaign.id,
      audience_count: contacts.length,
      holdout_count: excluded.holdout ?? 0,
      eligible_count: eligible.length,
      excluded,
      after_frequency_cap_count: afterCaps,
      template,
      cost_estimate: estimateCost(
        byCountry,
        category,
        deps.rateTable ??
          (await workspaceRateTable(runtime, campaign.workspace_id, now.toISOString().slice(0, 10))),
      ),
      preview,
      schedule_start: start.toISOString(),
      warnings,
      errors,
      can_launch: errors.length === 0,
    },
  };
}

/** What a launch would do, without doing it. */
export async function reviewCampaign(
  runtime: Runtime,
  workspaceId: string,
  campaignId: string,
  deps: LaunchDeps = {},
): Promise<Review> {
  const campaign = await requireCampaign(runtime.pg, workspaceId, campaignId);
  return (await plan(runtime, campaign, deps, `review_${campaignId}_${Date.now()}`)).review;
}

/**
 * Launches a draft: refuses (state unchanged) anything that would fail; otherwise freezes the
 * audience into ClickHouse, writes one ledger row per eligible contact and moves the campaign to
 * running (or scheduled).
 */
export async function launchCampaign(
  runtime: Runtime,
  workspaceId: string,
  campaignId: string,
  actor: string,
  deps: LaunchDeps = {},
): Promise<{ campaign: Campaign; review: Review }> {
  const campaign = await requireCampaign(runtime.pg, workspaceId, campaignId);
  if (campaign.state !== 'draft')
    throw new CampaignError('conflict', `cannot launch a ${campaign.state} campaign`);
  if (campaign.schedule.type === 'at' && !isValidTimeZone(campaign.schedule.timezone))
    throw new CampaignError('invalid', `unknown time zone ${campaign.schedule.timezone}`, [
      { path: '/schedule/timezone', message: `unknown time zone ${campaign.schedule.timezone}` },
    ]);
  const now = deps.now ?? new Date();
  const { review, audience, category } = await plan(runtime, campaign, deps, campaign.id);
  if (!review.can_launch)
    throw new CampaignError(
      'invalid',
      `the campaign cannot be launched: ${review.errors.map((e) => e.message).join('; ')}`,
      review.errors,
    );

  const launchedAt = now.toISOString();
  for (let i = 0; i < audience.length; i += 10_000) {
    const chunk = audience.slice(i, i + 10_000);
    if (campaign.audience.type !== 'segment')
      await runtime.ch.insert(
        'audience_snapshots',
        chunk.map((c) => ({ workspace_id: workspaceId, snapshot_id: campaign.id, contact_id: c.id })),
      );
    await runtime.ch.insert(
      'campaign_audience',
      chunk.map((c) => ({
        workspace_id: workspaceId,
        campaign_id: campaign.id,
        contact_id: c.id,
        holdout: c.holdout ? 1 : 0,
        excluded_reason: c.excluded_reason,
        launched_at: launchedAt,
      })),
    );
  }

  const eligible = audience.filter((c) => !c.excluded_reason);
  const start = scheduleStart(campaign.schedule, now);
  const times = new Map<string, { at: Date; exploration: boolean; propensity: number }>();
  if (campaign.schedule.type === 'optimal') {
    // The fitted send-time model where a fit exists; the workspace's best hour until then.
    const chooser = deps.chooser ?? stoChooserWithFallback(runtime, workspaceBestHourChooser(runtime));
    const plans = await chooser.choose({
      workspaceId,
      contacts: eligible.map((c) => ({ id: c.id, timezone: c.timezone || null, country: c.country || null })),
      window: {
        start: new Date(Math.max(start.getTime(), now.getTime())),
        end: new Date(campaign.schedule.window_end),
      },
      quietHours: campaign.settings.quiet_hours ?? undefined,
      explorationShare: campaign.schedule.exploration_share,
      seed: campaign.id,
    });
    for (const p of plans)
      times.set(p.contactId, { at: p.at, exploration: p.exploration, propensity: p.propensity });
  }
  // A contact without a plan has the whole window in its quiet hours: skipped, never sent outside it.
  const outsideWindow =
    campaign.schedule.type === 'optimal' ? eligible.filter((c) => !times.has(c.id)).map((c) => c.id) : [];

  const updated = await runtime.pg.transaction(async (tx) => {
    for (let i = 0; i < eligible.length; i += 2_000) {
      const chunk = eligible.slice(i, i + 2_000);
      await tx.query(
        `INSERT INTO campaign_sends (send_id, workspace_id, campaign_id, contact_id, phone, country, timezone, state,
            not_before, rendered, exploration, propensity)
         SELECT 'snd_' || md5($2 || ':' || u.contact_id), $1, $2, u.contact_id, u.phone, u.country, u.timezone, 'queued',
                u.not_before, u.rendered, u.exploration, u.propensity
           FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::jsonb[], $9::bool[], $10::float8[])
                AS u(contact_id, phone, country, timezone, not_before, rendered, exploration, propensity)
         ON CONFLICT (campaign_id, contact_id) DO NOTHING`,
        [
          workspaceId,
          campaign.id,
          chunk.map((c) => c.id),
          chunk.map((c) => c.phone),
          chunk.map((c) => c.country),
          chunk.map((c) => c.timezone),
          chunk.map((c) => times.get(c.id)?.at ?? start),
          chunk.map((c) => JSON.stringify(renderContent(campaign.content, c))),
          chunk.map((c) => times.get(c.id)?.exploration ?? false),
          chunk.map((c) => times.get(c.id)?.propensity ?? 1),
        ],
      );
    }
    if (outsideWindow.length)
      await tx.query(
        `UPDATE campaign_sends SET state = 'skipped', skip_reason = 'window_in_quiet_hours', final_at = now(), updated_at = now()
          WHERE campaign_id = $1 AND contact_id = ANY($2::text[]) AND state = 'queued'`,
        [campaign.id, outsideWindow],
      );
    await tx.query(
      `UPDATE campaigns SET audience_count = $2, content = jsonb_set(content, '{template,category}', to_jsonb($3::text), false)
        WHERE id = $1 AND content ? 'template'`,
      [campaign.id, review.audience_count, category],
    );
    await tx.query('UPDATE campaigns SET audience_count = $2 WHERE id = $1', [
      campaign.id,
      review.audience_count,
    ]);
    const later = campaign.schedule.type !== 'now' && start.getTime() > now.getTime() + 1_000;
    return transition(tx, workspaceId, campaign.id, later ? 'launch_later' : 'launch_now', actor, {
      extra: {
        audience_count: review.audience_count,
        eligible_count: review.eligible_count,
        excluded: review.excluded,
      },
    });
  });
  return { campaign: updated, review };
}
