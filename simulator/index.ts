export { SimClock } from './clock.ts';
export { ERROR_TITLES, httpStatusFor } from './errors.ts';
export {
  DEFAULT_RECIPIENT_RATES,
  type RecipientProfile,
  recipientProfile,
  timezoneForCountry,
} from './recipients.ts';
export { type RunningSimulator, type StartSimulatorOptions, startSimulator } from './server.ts';
export {
  type Fault,
  localTime,
  type SimLogEntry,
  Simulator,
  type SimulatorOptions,
  TIER_LIMITS,
  type Tier,
} from './simulator.ts';
export { DEFAULT_WEBHOOK_OPTIONS, type WebhookOptions } from './webhooks.ts';
