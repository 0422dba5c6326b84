/**
 * Command executors: local (child_process, argv only) and SSH (ssh2, pinned host keys).
 * @module
 */
export { shellQuote, shellCommand } from './quote';
export { createLocalExecutor, type LocalExecutorOptions } from './local';
