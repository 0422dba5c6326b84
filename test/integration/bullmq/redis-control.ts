/**
 * Stopping, killing and starting again the private test Redis (scripts/start-services.sh, port
 * 6390 by default) from the BullMQ suites that take Redis away mid-run. Only under the
 * integration lock: other suites share this Redis. The start script closes its descriptors before
 * starting the daemon, so the restarted Redis never holds the test lock.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../../..');
/** Where scripts/start-services.sh keeps Redis's files (its dump file among them). */
const REDIS_DIR = join(process.env['SERVICES_DIR'] ?? '/var/tmp/instance-images-test/services', 'redis');

/** Control of the test Redis at `url`. */
export interface RedisControl {
  /** Runs `redis-cli` against it; returns its trimmed output. */
  cli(...args: string[]): string;
  /** Whether it answers PING. */
  up(): boolean;
  /** Stops it with its dataset saved (`SHUTDOWN SAVE`) and waits until it is gone. */
  shutdownSaving(): Promise<void>;
  /** Kills it (SIGKILL, a crash: the test instance keeps no dataset) and waits until it is gone. */
  kill(): Promise<void>;
  /**
   * Starts it again when it is down (scripts/start-services.sh); `keepDataset` false (the default)
   * removes any dump file first, so it starts empty, as a restart without persistence does.
   */
  restart(options?: { keepDataset?: boolean }): void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The control of the test Redis at `url` (the suite's Redis URL). */
export function redisControl(url: string): RedisControl {
  const parsed = new URL(url);
  const cli = (...args: string[]) =>
    execFileSync('redis-cli', ['-h', parsed.hostname, '-p', parsed.port || '6379', ...args], { encoding: 'utf8' }).trim();
  const up = () => {
    try {
      return cli('ping') === 'PONG';
    } catch {
      return false;
    }
  };
  const gone = async () => {
    for (let i = 0; i < 100 && up(); i++) await sleep(100);
    if (up()) throw new Error(`Redis at ${parsed.host} is still up`);
  };
  return {
    cli,
    up,
    async shutdownSaving() {
      cli('shutdown', 'save');
      await gone();
    },
    async kill() {
      const pid = Number(/process_id:(\d+)/.exec(cli('info', 'server'))?.[1]);
      if (!Number.isSafeInteger(pid) || pid <= 0) throw new Error('Redis did not say its process id');
      process.kill(pid, 'SIGKILL');
      await gone();
    },
    restart(options = {}) {
      if (up()) return;
      if (!options.keepDataset) rmSync(join(REDIS_DIR, 'dump.rdb'), { force: true });
      execFileSync('bash', [join(ROOT, 'scripts/start-services.sh')], { stdio: 'ignore' });
      // The test instance runs without persistence: a dataset saved for one test is not kept.
      rmSync(join(REDIS_DIR, 'dump.rdb'), { force: true });
    },
  };
}
