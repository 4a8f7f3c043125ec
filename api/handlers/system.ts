import { ProblemError } from '../problem.ts';
import type { Handler } from '../types.ts';

export const getHealth: Handler<'getHealth'> = async () => ({ status: 200, body: { status: 'ok' } });

export const getReadiness: Handler<'getReadiness'> = async ({ runtime }) => {
  const checks: Record<string, string> = {};
  const results = await Promise.allSettled([
    runtime.pg.query('SELECT 1').then(() => (checks.postgres = 'ok')),
    runtime.ch.rows('SELECT 1').then(() => (checks.clickhouse = 'ok')),
  ]);
  const ready = results.every((r) => r.status === 'fulfilled');
  if (!ready) {
    checks.postgres ??= 'unavailable';
    checks.clickhouse ??= 'unavailable';
    throw new ProblemError(503, 'Service Unavailable', `not ready: ${JSON.stringify(checks)}`);
  }
  return { status: 200, body: { status: 'ok', checks } };
};

export const getCurrentWorkspace: Handler<'getCurrentWorkspace'> = async ({ workspace }) => ({
  status: 200,
  body: workspace,
});
