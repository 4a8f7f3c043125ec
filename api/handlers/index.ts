import type { Handlers } from '../types.ts';
import * as campaigns from './campaigns.ts';
import * as system from './system.ts';

/** Every operation of api/openapi.yaml, by operationId; the type makes a missing one a compile error. */
export const handlers: Handlers = {
  ...system,
  ...campaigns,
};
