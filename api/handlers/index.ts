import type { Handlers } from '../types.ts';
import * as analytics from './analytics.ts';
import * as campaigns from './campaigns.ts';
import * as contacts from './contacts.ts';
import * as dashboards from './dashboards.ts';
import * as events from './events.ts';
import * as imports from './imports.ts';
import * as segments from './segments.ts';
import * as sto from './sto.ts';
import * as system from './system.ts';
import * as whatsapp from './whatsapp.ts';

/** Every operation of api/openapi.yaml, by operationId; the type makes a missing one a compile error. */
export const handlers: Handlers = {
  ...system,
  ...segments,
  ...campaigns,
  ...contacts,
  ...events,
  ...imports,
  ...whatsapp,
  ...analytics,
  ...dashboards,
  ...sto,
};
