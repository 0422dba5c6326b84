#!/usr/bin/env node
/**
 * The `instance-images` command (package.json `bin`): runs {@link runCli} with the process's
 * arguments and exits with its code.
 * @module
 */
import { runCli } from './run';

void runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  cwd: process.cwd(),
}).then((code) => {
  process.exitCode = code;
});
