/**
 * A worker process of the example panel (`--workers N`), forked by the panel process
 * (`workers.ts`): the same SDK as the panel, with the BullMQ queue in the `worker` role, so it
 * runs the jobs the panel enqueues. Its config is the JSON in argv[2]; it asks the panel for
 * instances over IPC, says `ready` once bound, and closes when told `close` (or on SIGTERM, or
 * when the panel process is gone).
 */
import type { HostInstance } from '../../src';
import { createPanelSdk } from './sdk';
import type { InstanceAnswer, InstanceRequest, WorkerConfig } from './workers';

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
const asked = new Map<number, { resolve(instance: HostInstance | null): void; reject(error: Error): void }>();
let nextRequest = 1;

/** The panel process's record of an instance. */
function getInstance(instanceId: string): Promise<HostInstance | null> {
  return new Promise((resolve, reject) => {
    if (!process.send || !process.connected) {
      reject(new Error('The panel process is gone'));
      return;
    }
    const requestId = nextRequest++;
    asked.set(requestId, { resolve, reject });
    const request: InstanceRequest = { kind: 'get-instance', requestId, instanceId };
    process.send(request);
  });
}

const { sdk, pool } = createPanelSdk({
  dataDir: config.dataDir,
  getInstance,
  role: { kind: 'worker', redisUrl: config.redisUrl, workerId: config.workerId },
  label: config.workerId,
  ...(config.hypervisors ? { hypervisors: config.hypervisors } : {}),
  ...(config.imageCopies ? { imageCopies: config.imageCopies } : {}),
});

let closing: Promise<void> | null = null;
const close = () => {
  closing ??= sdk
    .close()
    .then(() => pool.close())
    .finally(() => process.exit(0));
};
process.on('message', (message: InstanceAnswer | 'close') => {
  if (message === 'close') close();
  else if (message?.kind === 'instance') {
    asked.get(message.requestId)?.resolve(message.instance);
    asked.delete(message.requestId);
  }
});
process.on('SIGTERM', close);
// Ctrl-C reaches the whole process group: the panel process closes its workers itself.
process.on('SIGINT', () => undefined);
// The panel process is gone: nobody to serve, nobody to answer.
process.on('disconnect', () => {
  for (const { reject } of asked.values()) reject(new Error('The panel process is gone'));
  asked.clear();
  close();
});
process.send?.('ready');
