/**
 * A worker process of the BullMQ cluster test: runs jobs until told to close (or killed). Its
 * config is the JSON in argv[2]; argv[3] is its worker id. Says `ready` over IPC once bound.
 */
import { clusterProcess, type ClusterConfig } from './cluster-world';

const config = JSON.parse(process.argv[2] ?? '{}') as ClusterConfig;
const { ii } = await clusterProcess(config, 'worker', process.argv[3] ?? `worker-${process.pid}`);
process.on('message', (message) => {
  if (message === 'close') void ii.close().then(() => process.exit(0));
});
process.send?.('ready');
