import { Command } from 'commander';
import { reducerNames } from '../../reducers/index.js';
import { configureCommand } from '../run.js';

/** `vtc demo` — until the full demo lands, prints what is available. */
export function demoCommand(): Command {
  return configureCommand(new Command('demo'))
    .description('run the offline demo on the bundled samples')
    .action(() => {
      process.stdout.write(`vtc: available reducers: ${reducerNames().join(', ')}\nTry: vtc reduce --help\n`);
    });
}
