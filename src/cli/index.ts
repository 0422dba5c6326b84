/**
 * The operator CLI as a function, for hosts that wrap it in their own command:
 * `runCli(argv, io)` returns the exit code (the `instance-images` bin calls it).
 * @module
 */
export { runCli, CONFIG_FILES, EXIT, type CliIo } from './run';
