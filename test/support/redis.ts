/**
 * Finds the real Redis the BullMQ integration suite runs against: REDIS_URL, else the env file
 * written by scripts/start-services.sh, else the private instance's default address
 * (redis://127.0.0.1:6390).
 */
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { SERVICES_ENV_FILE } from './postgres';

/** The private test instance's address when nothing else says otherwise. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6390';

/** The configured Redis URL. */
export function redisUrl(): string {
  if (process.env['REDIS_URL']) return process.env['REDIS_URL'];
  if (existsSync(SERVICES_ENV_FILE)) {
    const match = /REDIS_URL=("?)([^"\s]+)\1/.exec(readFileSync(SERVICES_ENV_FILE, 'utf8'));
    if (match?.[2]) return match[2];
  }
  return DEFAULT_REDIS_URL;
}

/**
 * The Redis URL when Redis answers PING there; `null` (tests skip, with the reason printed) when
 * it does not. With CI set, an unreachable server throws: CI must never skip this suite.
 */
export async function reachableRedis(): Promise<string | null> {
  const url = redisUrl();
  const parsed = new URL(url);
  const reason = await new Promise<string | null>((resolve) => {
    const socket = connect({ host: parsed.hostname, port: Number(parsed.port || 6379) });
    const done = (value: string | null) => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(5_000, () => done('no answer within 5 s'));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) =>
      done(data.toString().startsWith('+PONG') ? null : `unexpected answer ${JSON.stringify(data.toString())}`),
    );
    socket.once('error', (error) => done(error.message));
  });
  if (reason === null) return url;
  const message = `Redis is not reachable at ${parsed.host} (${reason}); start it with scripts/start-services.sh`;
  if (process.env['CI']) throw new Error(message);
  console.warn(`skipping the Redis suite: ${message}`);
  return null;
}
