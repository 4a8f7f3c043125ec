import { Command } from 'commander';
import { registerCommands } from '../../cli/commands.ts';

/**
 * Runs `chorus ...args` in this process and returns what it printed: spawning one Node per command is
 * slow on a loaded machine, and each command opens and closes the stores as it does from a shell.
 */
export async function chorus(...args: string[]): Promise<string> {
  const program = new Command().name('chorus').exitOverride();
  registerCommands(program);
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => {
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'chorus', ...args]);
  } finally {
    process.stdout.write = write;
  }
  return out;
}
