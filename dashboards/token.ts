import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Sql } from '../engine/stores/postgres.ts';

/**
 * Short-lived, read-only dashboard tokens: `cdt1.<payload>.<signature>`, the payload being
 * base64url JSON `{w: workspace, c: campaign or '*', exp: unix seconds}`, signed with HMAC-SHA256
 * under a secret kept in Postgres (dashboard_signing_keys). A token opens the dashboard endpoints of
 * one workspace (optionally one campaign) and nothing else; it never grants the API key's powers.
 */
export const TOKEN_PREFIX = 'cdt1';
export const DEFAULT_TTL_SECONDS = 3600;
export const MAX_TTL_SECONDS = 7 * 24 * 3600;

export interface DashboardGrant {
  workspaceId: string;
  /** '*' for every campaign of the workspace. */
  campaignId: string;
  expiresAt: Date;
}

const secrets = new WeakMap<object, Promise<Buffer>>();

async function signingSecret(sql: Sql): Promise<Buffer> {
  let secret = secrets.get(sql);
  if (!secret) {
    secret = (async () => {
      // First caller creates it; a concurrent creator loses the race and both read the winner.
      await sql.query(
        'INSERT INTO dashboard_signing_keys (id, secret) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING',
        ['default', randomBytes(32).toString('base64url')],
      );
      const { rows } = await sql.query<{ secret: string }>(
        'SELECT secret FROM dashboard_signing_keys WHERE id = $1',
        ['default'],
      );
      return Buffer.from(rows[0]!.secret, 'base64url');
    })();
    secret.catch(() => secrets.delete(sql));
    secrets.set(sql, secret);
  }
  return secret;
}

const sign = (secret: Buffer, payload: string) =>
  createHmac('sha256', secret).update(payload).digest('base64url');

export async function createDashboardToken(
  sql: Sql,
  grant: { workspaceId: string; campaignId?: string; ttlSeconds?: number },
  now = new Date(),
): Promise<{ token: string; expiresAt: Date }> {
  const ttl = Math.min(Math.max(grant.ttlSeconds ?? DEFAULT_TTL_SECONDS, 1), MAX_TTL_SECONDS);
  const exp = Math.floor(now.getTime() / 1000) + ttl;
  const payload = Buffer.from(
    JSON.stringify({ w: grant.workspaceId, c: grant.campaignId ?? '*', exp }),
  ).toString('base64url');
  const secret = await signingSecret(sql);
  return { token: `${TOKEN_PREFIX}.${payload}.${sign(secret, payload)}`, expiresAt: new Date(exp * 1000) };
}

/** The grant a token carries, or undefined when it is malformed, forged or expired. */
export async function verifyDashboardToken(
  sql: Sql,
  token: string,
  now = new Date(),
): Promise<DashboardGrant | undefined> {
  if (token.length > 1000) return undefined;
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== TOKEN_PREFIX) return undefined;
  const [, payload, signature] = parts as [string, string, string];
  const expected = Buffer.from(sign(await signingSecret(sql), payload));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  let body: { w?: unknown; c?: unknown; exp?: unknown };
  try {
    body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof body.w !== 'string' || typeof body.c !== 'string' || typeof body.exp !== 'number')
    return undefined;
  if (body.exp * 1000 <= now.getTime()) return undefined;
  return { workspaceId: body.w, campaignId: body.c, expiresAt: new Date(body.exp * 1000) };
}

export function grantCovers(grant: DashboardGrant, campaignId: string | null): boolean {
  return grant.campaignId === '*' || (campaignId !== null && grant.campaignId === campaignId);
}
