/**
 * The example panel's `--workers N` mode: the panel process only enqueues (BullMQ, role `web`) and
 * N worker processes, forked from it, run the work (role `worker`). They share the panel's SQLite
 * file and Redis; a worker asks the panel process for its instances over the fork's IPC channel
 * (a real panel's workers would read the panel's own database). The worker side is
 * `worker.child.ts`. See docs/scaling.md.
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HostHypervisor, HostInstance } from '../../src';
import type { PanelImageCopies } from './sdk';

/** What the panel hands a worker process (its argv[2], as JSON). */
export interface WorkerConfig {
  dataDir: string;
  redisUrl: string;
  workerId: string;
  /** The panel's extra hypervisors and copy policy (the workers' SDK must see what the panel's sees). */
  hypervisors?: HostHypervisor[];
  imageCopies?: PanelImageCopies;
}

/** A worker's question to the panel process. */
export interface InstanceRequest {
  kind: 'get-instance';
  requestId: number;
  instanceId: string;
}

/** The panel's answer. */
export interface InstanceAnswer {
  kind: 'instance';
  requestId: number;
  instance: HostInstance | null;
}

/** The running worker processes of a panel. */
export interface PanelWorkers {
  /** Their process ids. */
  readonly pids: number[];
  /** Asks each to close (it finishes or interrupts its work, as `InstanceImages.close` does) and waits for it to exit. */
  close(): Promise<void>;
}

/** Forks `count` worker processes; resolves once each has said it is ready. */
export async function startWorkers(
  count: number,
  config: Omit<WorkerConfig, 'workerId'>,
  getInstance: (id: string) => HostInstance | null,
): Promise<PanelWorkers> {
  const children: ChildProcess[] = [];
  const started = Array.from({ length: count }, (_, i) => {
    const workerConfig: WorkerConfig = { ...config, workerId: `panel-worker-${i + 1}` };
    const child = fork(fileURLToPath(new URL('./worker.child.ts', import.meta.url)), [JSON.stringify(workerConfig)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.push(child);
    child.on('message', (message: InstanceRequest) => {
      if (message?.kind !== 'get-instance') return;
      const answer: InstanceAnswer = { kind: 'instance', requestId: message.requestId, instance: getInstance(message.instanceId) };
      if (child.connected) child.send(answer);
    });
    return new Promise<void>((resolve, reject) => {
      child.on('message', (message) => {
        if (message === 'ready') resolve();
      });
      child.once('exit', (code) => reject(new Error(`panel worker ${workerConfig.workerId} exited (${code}) before it was ready`)));
    });
  });
  const close = async () => {
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        if (child.connected) child.send('close');
        else child.kill('SIGTERM');
        await exited;
      }),
    );
  };
  try {
    await Promise.all(started);
  } catch (error) {
    await close();
    throw error;
  }
  return { pids: children.map((child) => child.pid ?? 0), close };
}
