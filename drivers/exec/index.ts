/**
 * Command executors: local (child_process, argv only) and SSH (ssh2, pinned host keys).
 * @module
 */
export { shellQuote, shellCommand } from './quote';
export { createLocalExecutor, type LocalExecutorOptions } from './local';
export {
  createSshExecutor,
  SSH_DEFAULT_RECEIVE_WINDOW,
  SSH_READ_BUFFER_BYTES,
  type SshConnection,
  type SshExecutor,
  type SshExecutorOptions,
} from './ssh';
export { hostKeyFingerprint, hostKeyMatches, parseHostKeyPin, type HostKeyPin } from './host-key';
export { createExecutorPool, type ExecutorPool, type ExecutorPoolOptions } from './pool';
