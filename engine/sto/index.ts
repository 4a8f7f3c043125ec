export {
  DEFAULT_UCB_WEIGHT,
  type PlanResult,
  planSendTimes,
  type SendTimeDetail,
  stoChooser,
} from './chooser.ts';
export { type FitOptions, type FitResult, fitSendTime, latestFit } from './fit.ts';
export { getStoSettings, type StoSettings, setStoSettings } from './settings.ts';
export { SendTimeInputError, validateSendTimeInput } from './slots.ts';
export type { SendTimeChooser, SendTimePlan, SendTimeRequest, SendTimeWindow } from './types.ts';
