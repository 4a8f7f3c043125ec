import type { Command } from 'commander';
import { registerCampaignCommands } from './campaigns.ts';
import { registerAnalyticsCommands } from './analytics.ts';
import { registerCoreCommands } from './core.ts';

/** Each feature registers its commands here, one module each. */
export function registerCommands(program: Command): void {
  registerCoreCommands(program);
  registerCampaignCommands(program);
  registerAnalyticsCommands(program);
}
