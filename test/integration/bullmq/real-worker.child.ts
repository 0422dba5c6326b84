/**
 * A worker process of the real-parts cluster test: runs jobs until told to close (or killed). Its
 * config is the JSON in argv[2]; argv[3] is its worker id. Says `ready` over IPC once bound, and
 * `{ held, pid }` when a capture waits on a hold marker.
 */
import { realClusterProcess, type RealClusterConfig } from './real-world';

const config = JSON.parse(process.argv[2] ?? '{}') as RealClusterConfig;
const { ii } = await realClusterProcess(config, 'worker', process.argv[3] ?? `worker-${process.pid}`);
process.on('message', (message) => {
  if (message === 'close') void ii.close().then(() => process.exit(0));
});
process.on('exit', (code) => console.error(new Date().toISOString(), process.argv[3], 'exits', code));
process.send?.('ready');
