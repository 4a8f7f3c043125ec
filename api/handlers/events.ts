import { ingestEvents as ingest, parseNdjson } from '../../engine/events/index.ts';
import type { Handler } from '../types.ts';

export const ingestEvents: Handler<'ingestEvents'> = async ({ runtime, workspace, body }) => {
  const items = typeof body === 'string' ? parseNdjson(body) : (body as unknown[]);
  return { status: 200, body: await ingest(runtime, workspace, items) };
};
