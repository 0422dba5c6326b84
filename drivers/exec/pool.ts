/**
 * The executor pool: one executor per hypervisor, the local executor for `{ type: 'local' }`
 * hypervisors and a pooled SSH executor (kept-alive connections) for the others.
 * @module
 */
import { createHash } from 'node:crypto';
import type { Executor, ExecutorProvider } from '../../src/ports/executor';
import type { HostHypervisor } from '../../src/ports/host-directory';
import { createLocalExecutor } from './local';
import { createSshExecutor, type SshExecutorOptions } from './ssh';

/** Options of {@link createExecutorPool}. */
export interface ExecutorPoolOptions {
  /** Pool/timing settings for every SSH executor. */
  ssh?: Omit<SshExecutorOptions, 'label'>;
}

/** Executors by hypervisor, created on first use and reused. */
export interface ExecutorPool {
  /** The executor of `hypervisor` (same instance for the same hypervisor and connection settings). */
  executorFor: ExecutorProvider;
  /** Closes every executor's connections. Executors obtained later connect again. */
  close(): Promise<void>;
}

/** A digest of the connection settings, so that changed settings (a new key, host or pin) get a new executor. */
function connectionDigest(hypervisor: HostHypervisor): string {
  return createHash('sha256').update(JSON.stringify(hypervisor.connection)).digest('hex');
}

/** Creates an executor pool. */
export function createExecutorPool(options: ExecutorPoolOptions = {}): ExecutorPool {
  const executors = new Map<string, { digest: string; executor: Executor }>();
  const local = createLocalExecutor();

  const executorFor: ExecutorProvider = (hypervisor) => {
    if (hypervisor.connection.type === 'local') return local;
    const digest = connectionDigest(hypervisor);
    const existing = executors.get(hypervisor.id);
    if (existing && existing.digest === digest) return existing.executor;
    if (existing) void existing.executor.close();
    const { connection } = hypervisor;
    const executor = createSshExecutor(connection, {
      ...options.ssh,
      label: `ssh ${connection.username}@${connection.host}:${connection.port ?? 22} (${hypervisor.name})`,
    });
    executors.set(hypervisor.id, { digest, executor });
    return executor;
  };

  return {
    executorFor,
    async close() {
      const all = [...executors.values()];
      executors.clear();
      await Promise.all(all.map((entry) => entry.executor.close()));
    },
  };
}
