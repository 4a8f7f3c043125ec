import { ingestEvents as ingest, ingestNdjson } from '../../engine/events/index.ts';
import type { Handler } from '../types.ts';

export const ingestEvents: Handler<'ingestEvents'> = async ({ runtime, workspace, body }) => {
  const result =
    typeof body === 'string'
      ? await ingestNdjson(runtime, workspace, body)
      : await ingest(runtime, workspace, body as unknown[]);
  return { status: 200, body: result };
};
