/**
 * Content for dispatch: the template catalog (approval state and category), rendering a campaign's
 * content for one contact, and the cost estimate from a rate table. Each is pluggable so the
 * templates, WhatsApp and analytics modules can supply the real ones.
 */
import type { RenderedContent, TemplateComponentParameters } from '../channels/types.ts';
import type { Sql } from '../stores/postgres.ts';
import type { CampaignContent, TemplateCategory, VariableSource } from './types.ts';

export interface TemplateInfo {
  name: string;
  language: string;
  /** Provider review state: APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ... */
  status: string;
  category: TemplateCategory;
}

export interface TemplateCatalog {
  find(sql: Sql, workspaceId: string, name: string, language: string): Promise<TemplateInfo | undefined>;
}

/** Reads a `templates` table (workspace_id, name, language, status, category) when one exists. */
export const postgresTemplateCatalog: TemplateCatalog = {
  async find(sql, workspaceId, name, language) {
    const { rows: exists } = await sql.query<{ t: string | null }>(
      "SELECT to_regclass('templates')::text AS t",
    );
    if (!exists[0]?.t) return undefined;
    const { rows } = await sql.query<TemplateInfo>(
      `SELECT name, language, upper(status) AS status, upper(category) AS category FROM templates
        WHERE workspace_id = $1 AND name = $2 AND language = $3
        ORDER BY (channel = 'whatsapp') DESC LIMIT 1`,
      [workspaceId, name, language],
    );
    return rows[0];
  },
};

/**
 * Asks the provider: the Cloud API's `GET /{waba-id}/message_templates?name=` for the sender's
 * WhatsApp Business Account (the simulator serves the same endpoint).
 */
export function providerTemplateCatalog(sender: {
  base_url: string;
  api_version: string;
  waba_id?: string | null;
  access_token: string | null;
}): TemplateCatalog {
  return {
    async find(_sql, _workspaceId, name, language) {
      if (!sender.waba_id) return undefined;
      const url = `${sender.base_url.replace(/\/+$/, '')}/${sender.api_version}/${sender.waba_id}/message_templates?name=${encodeURIComponent(name)}`;
      const response = await fetch(url, {
        headers: { authorization: `Bearer ${sender.access_token ?? ''}` },
        signal: AbortSignal.timeout(10_000),
      });
      if (!response.ok) throw new Error(`the provider's template list answered HTTP ${response.status}`);
      const { data } = (await response.json()) as {
        data?: { name: string; language: string; status: string; category: string }[];
      };
      const found = data?.find((t) => t.name === name && t.language === language);
      return found
        ? {
            name,
            language,
            status: found.status.toUpperCase(),
            category: found.category.toUpperCase() as TemplateCategory,
          }
        : undefined;
    },
  };
}

/**
 * The workspace's `templates` table first (kept current by template-status webhooks); a template it
 * does not hold is asked of the provider when the sender has a business account id.
 */
export function defaultTemplateCatalog(
  sender?: Parameters<typeof providerTemplateCatalog>[0],
): TemplateCatalog {
  return {
    async find(sql, workspaceId, name, language) {
      const local = await postgresTemplateCatalog.find(sql, workspaceId, name, language);
      if (local || !sender?.waba_id) return local;
      return providerTemplateCatalog(sender).find(sql, workspaceId, name, language);
    },
  };
}

/** What rendering needs of a contact. */
export interface RenderContact {
  id: string;
  phone: string;
  external_id?: string | null;
  country?: string | null;
  language?: string | null;
  timezone?: string | null;
  attributes: Record<string, unknown>;
}

function resolve(source: VariableSource, contact: RenderContact): string {
  if ('value' in source) return source.value;
  const path = source.field.replace(/^contact\./, '');
  let value: unknown;
  if (path.startsWith('attributes.')) value = contact.attributes[path.slice('attributes.'.length)];
  else value = (contact as unknown as Record<string, unknown>)[path] ?? contact.attributes[path];
  if (value === undefined || value === null || value === '') return source.fallback ?? '';
  return Array.isArray(value) ? value.join(', ') : String(value);
}

/** A variable left empty with no fallback: the provider would refuse it (132000/132012). */
export function missingVariables(content: CampaignContent, contact: RenderContact): string[] {
  if (!('template' in content)) return [];
  return Object.entries(content.template.variables ?? {})
    .filter(([, source]) => resolve(source, contact) === '')
    .map(([key]) => key);
}

export function renderContent(content: CampaignContent, contact: RenderContact): RenderedContent {
  if ('text' in content) {
    const body = content.text.body.replace(/\{\{\s*([\w.]+)\s*\}\}/g, (_, field: string) =>
      resolve({ field }, contact),
    );
    return { type: 'text', body };
  }
  const template = content.template;
  const components: TemplateComponentParameters[] = [];
  if (template.media)
    components.push({
      type: 'header',
      parameters: [{ type: template.media.type, [template.media.type]: { link: template.media.link } }],
    });
  const entries = Object.entries(template.variables ?? {});
  if (entries.length) {
    const positional = entries.every(([key]) => /^\d+$/.test(key));
    entries.sort(([a], [b]) => (positional ? Number(a) - Number(b) : a.localeCompare(b)));
    components.push({
      type: 'body',
      parameters: entries.map(([key, source]) => ({
        type: 'text',
        text: resolve(source, contact),
        ...(positional ? {} : { parameter_name: key }),
      })),
    });
  }
  return { type: 'template', name: template.name, language: template.language, components };
}

/** Price of one delivered message, by country and category; users can supply their own table. */
export interface RateTable {
  currency: string;
  source: string;
  effective_from: string;
  rate(country: string, category: TemplateCategory): number;
}

/** Rough USD rates from the facts page (Meta, per delivered template since 1 July 2025). */
export const defaultRateTable: RateTable = {
  currency: 'USD',
  source: 'Meta pricing page, rough figures via partners (see /work/shared/whatsapp-cloud-api.md)',
  effective_from: '2025-07-01',
  rate(country, category) {
    const table: Record<string, Record<TemplateCategory, number>> = {
      IN: { MARKETING: 0.012, UTILITY: 0.0015, AUTHENTICATION: 0.0015 },
      US: { MARKETING: 0.025, UTILITY: 0.004, AUTHENTICATION: 0.0135 },
      BR: { MARKETING: 0.0625, UTILITY: 0.008, AUTHENTICATION: 0.0315 },
    };
    const fallback: Record<TemplateCategory, number> = {
      MARKETING: 0.04,
      UTILITY: 0.006,
      AUTHENTICATION: 0.02,
    };
    return (table[country] ?? fallback)[category];
  },
};

export function estimateCost(
  byCountry: Record<string, number>,
  category: TemplateCategory,
  table: RateTable = defaultRateTable,
): {
  currency: string;
  total: number;
  source: string;
  effective_from: string;
  by_country: Record<string, number>;
} {
  const by: Record<string, number> = {};
  let total = 0;
  for (const [country, count] of Object.entries(byCountry)) {
    const cost = count * table.rate(country, category);
    by[country || 'unknown'] = Math.round(cost * 10_000) / 10_000;
    total += cost;
  }
  return {
    currency: table.currency,
    total: Math.round(total * 100) / 100,
    source: table.source,
    effective_from: table.effective_from,
    by_country: by,
  };
}
