import type { Command } from 'commander';
import { registerAnalyticsCommands } from './analytics.ts';
import { registerCoreCommands } from './core.ts';
import { registerSimCommands } from './sim.ts';

/** Each feature registers its commands here, one module each. */
export function registerCommands(program: Command): void {
  registerCoreCommands(program);
  registerSimCommands(program);
  registerAnalyticsCommands(program);
}
