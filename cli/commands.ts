import type { Command } from 'commander';
import { registerAnalyticsCommands } from './analytics.ts';
import { registerCampaignCommands } from './campaigns.ts';
import { registerContactCommands } from './contacts.ts';
import { registerCoreCommands } from './core.ts';
import { registerDemoCommands } from './demo.ts';
import { registerSegmentCommands } from './segments.ts';
import { registerSimCommands } from './sim.ts';
import { registerStoCommands } from './sto.ts';

/** Each feature registers its commands here, one module each. */
export function registerCommands(program: Command): void {
  registerCoreCommands(program);
  registerContactCommands(program);
  registerDemoCommands(program);
  registerSimCommands(program);
  registerCampaignCommands(program);
  registerAnalyticsCommands(program);
  registerStoCommands(program);
  registerSegmentCommands(program);
}
