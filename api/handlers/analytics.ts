import { verifyWebhookSignature } from '../../engine/channels/whatsapp/index.ts';
import { toCsv } from '../../engine/metrics/csv.ts';
import {
  type CampaignMetrics,
  campaignMetrics,
  deleteRate,
  listRates,
  MetricsError,
  metricsBreakdown,
  putRate,
} from '../../engine/metrics/index.ts';
import type { Runtime } from '../../engine/runtime.ts';
import { isCompleteJsonObject } from '../../engine/webhooks/body.ts';
import { inboxStats, storeWebhook, webhookSender } from '../../engine/webhooks/inbox.ts';
import {
  messagingSettings,
  updateMessagingSettings as saveMessagingSettings,
} from '../../engine/webhooks/settings.ts';
import { safeEqual } from '../../engine/webhooks/signature.ts';
import { badRequest, notFound, ProblemError, unauthorized } from '../problem.ts';
import type { Handler } from '../types.ts';

export const verifyWhatsappWebhook: Handler<'verifyWhatsappWebhook'> = async ({ runtime, params, query }) => {
  const sender = await webhookSender(runtime, params.sender_id);
  const token = query['hub.verify_token'];
  if (query['hub.mode'] !== 'subscribe' || !sender?.verify_token || !safeEqual(token, sender.verify_token)) {
    throw new ProblemError(403, 'Forbidden', 'verification failed');
  }
  return { status: 200, body: query['hub.challenge'], contentType: 'text/plain' };
};

/**
 * A provider's POST: the signature checked on the raw bytes, the body checked to be one whole JSON
 * object, then the payload made durable in the inbox. Shared by the Fastify route and the node:http
 * fast path (api/webhook-fast-path.ts), so both answer alike.
 */
export async function acceptWhatsappWebhook(
  runtime: Runtime,
  senderId: string,
  raw: unknown,
  headers: Record<string, string | string[] | undefined>,
): Promise<{ status: 'stored' | 'duplicate' }> {
  if (!Buffer.isBuffer(raw)) throw badRequest('expected a JSON body');
  const sender = await webhookSender(runtime, senderId);
  if (!sender?.app_secret || !verifyWebhookSignature(raw, headers, sender.app_secret)) {
    throw unauthorized('bad or missing X-Hub-Signature-256');
  }
  // A signed body that is not one whole JSON object (cut short, say) cannot be processed; say so
  // rather than store it. A byte scan, not a parse: the processor dead-letters what it cannot read.
  if (!isCompleteJsonObject(raw)) {
    throw badRequest('body is not valid JSON', [{ path: '/body', message: 'is not valid JSON' }]);
  }
  const stored = await storeWebhook(runtime, sender, raw);
  // No wake-up per request: the loop polls, so a storm is processed in large batches, not one by one.
  return { status: stored.duplicate ? 'duplicate' : 'stored' };
}

export const receiveWhatsappWebhook: Handler<'receiveWhatsappWebhook'> = async ({
  runtime,
  params,
  request,
}) => ({
  status: 200,
  body: await acceptWhatsappWebhook(runtime, params.sender_id, request.body, request.headers),
});

export const getWebhookInbox: Handler<'getWebhookInbox'> = async ({ runtime, workspace }) => ({
  status: 200,
  body: await inboxStats(runtime, workspace.id),
});

function settingsBody(settings: Awaited<ReturnType<typeof messagingSettings>>) {
  return {
    reply_window_hours: settings.replyWindowHours,
    opt_out_keywords: settings.optOutKeywords,
    opt_out_confirmation: settings.optOutConfirmation,
  };
}

export const getMessagingSettings: Handler<'getMessagingSettings'> = async ({ runtime, workspace }) => ({
  status: 200,
  body: settingsBody(await messagingSettings(runtime, workspace.id)),
});

export const updateMessagingSettings: Handler<'updateMessagingSettings'> = async ({
  runtime,
  workspace,
  body,
}) => {
  const patch: Parameters<typeof saveMessagingSettings>[2] = {};
  if (body.reply_window_hours !== undefined) patch.replyWindowHours = body.reply_window_hours;
  if (body.opt_out_keywords !== undefined) patch.optOutKeywords = body.opt_out_keywords;
  if (body.opt_out_confirmation !== undefined) patch.optOutConfirmation = body.opt_out_confirmation;
  return { status: 200, body: settingsBody(await saveMessagingSettings(runtime, workspace.id, patch)) };
};

export const listMessageRates: Handler<'listMessageRates'> = async ({ runtime, workspace }) => ({
  status: 200,
  body: { rates: await listRates(runtime, workspace.id) },
});

export const putMessageRate: Handler<'putMessageRate'> = async ({ runtime, workspace, body }) => {
  if (Number.isNaN(Date.parse(body.valid_from))) {
    throw badRequest('valid_from is not a date', [{ path: '/body/valid_from', message: 'is not a date' }]);
  }
  return { status: 201, body: await putRate(runtime, workspace.id, body) };
};

export const deleteMessageRate: Handler<'deleteMessageRate'> = async ({ runtime, workspace, params }) => {
  if (!(await deleteRate(runtime, workspace.id, params.rate_id))) throw notFound(`no rate ${params.rate_id}`);
  return { status: 204, body: undefined };
};

/** Flattens the campaign report into `metric,value` lines. */
function campaignCsv(metrics: CampaignMetrics): string {
  const rows: Record<string, unknown>[] = [];
  const walk = (prefix: string, value: unknown) => {
    if (Array.isArray(value)) {
      for (const item of value as Record<string, unknown>[]) {
        const label = item.label ?? item.error_code;
        walk(`${prefix}.${String(label)}`, item.count ?? item.failed);
      }
    } else if (value && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) walk(prefix ? `${prefix}.${key}` : key, inner);
    } else rows.push({ metric: prefix, value: value ?? '' });
  };
  walk('', metrics);
  return toCsv(['metric', 'value'], rows);
}

export const getCampaignMetrics: Handler<'getCampaignMetrics'> = async ({
  runtime,
  workspace,
  params,
  query,
}) => {
  const metrics = await campaignMetrics(runtime, workspace.id, params.campaign_id);
  if (query.format === 'csv') {
    return { status: 200, body: campaignCsv(metrics) as never, contentType: 'text/csv; charset=utf-8' };
  }
  return { status: 200, body: metrics };
};

export const getMetricsBreakdown: Handler<'getMetricsBreakdown'> = async ({ runtime, workspace, query }) => {
  try {
    const rows = await metricsBreakdown(runtime, workspace.id, query.by, {
      campaignId: query.campaign_id,
      templateName: query.template,
      senderId: query.sender_id,
      country: query.country,
      from: query.from,
      to: query.to,
      timezone: query.timezone,
    });
    if (query.format === 'csv') {
      const columns = ['key', 'label', 'attempted', 'sent', 'delivered', 'read', 'replied', 'failed'];
      columns.push('delivery_rate', 'read_rate', 'reply_rate', 'failure_rate');
      return {
        status: 200,
        body: toCsv(columns, rows as unknown as Record<string, unknown>[]) as never,
        contentType: 'text/csv; charset=utf-8',
        headers: { 'content-disposition': `attachment; filename="metrics-by-${query.by}.csv"` },
      };
    }
    return { status: 200, body: { by: query.by, rows } };
  } catch (error) {
    if (error instanceof MetricsError)
      throw badRequest(error.message, [{ path: '/query', message: error.message }]);
    throw error;
  }
};
