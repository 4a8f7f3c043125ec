import { Command } from 'commander';
import { registerCommands } from './commands.ts';

const program = new Command();
program
  .name('chorus')
  .description('Chorus: an open-source campaign engine for messaging teams, WhatsApp first')
  .version('0.1.0')
  .showHelpAfterError();
registerCommands(program);
program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`chorus: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
