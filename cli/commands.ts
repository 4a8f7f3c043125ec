import type { Command } from 'commander';
import { registerAnalyticsCommands } from './analytics.ts';
import { registerCoreCommands } from './core.ts';
import { registerStoCommands } from './sto.ts';

/** Each feature registers its commands here, one module each. */
export function registerCommands(program: Command): void {
  registerCoreCommands(program);
  registerAnalyticsCommands(program);
  registerStoCommands(program);
}
