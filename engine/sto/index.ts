export {
  DEFAULT_UCB_WEIGHT,
  type PlanResult,
  planSendTimes,
  type SendTimeDetail,
  stoChooser,
  stoChooserWithFallback,
} from './chooser.ts';
export { evaluateSendTime, formatEvaluation, latestEvaluation, saveEvaluation } from './evaluate.ts';
export { type FitOptions, type FitResult, fitAllWorkspaces, fitSendTime, latestFit } from './fit.ts';
export { STO_FIT_QUEUE, stoQueues } from './jobs.ts';
export { getStoSettings, type StoSettings, setStoSettings } from './settings.ts';
export { SendTimeInputError, validateSendTimeInput } from './slots.ts';
export type { SendTimeChooser, SendTimePlan, SendTimeRequest, SendTimeWindow } from './types.ts';
