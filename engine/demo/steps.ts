import type { DemoStep } from './index.ts';

/** Steps later features add to `chorus demo`, run in this order after contacts and events. */
export const demoSteps: DemoStep[] = [];
