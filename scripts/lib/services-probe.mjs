/**
 * Which services the integration suites need are missing here, checked the way the suites check
 * them (test/support/guests.ts, test/integration/exec/ssh-target.ts, …/storage-s3/s3-env.ts,
 * test/support/postgres.ts, test/support/redis.ts, …/example/browser.test.ts), so that "nothing missing" means no suite
 * skips. Prints one line per missing group, `GROUP<TAB>reason`; GROUP is the script that provides
 * it: hypervisor (scripts/setup-hypervisor.sh), services (scripts/start-services.sh), browser
 * (scripts/setup-browser.sh). Prints nothing when all are there. Used by scripts/test.sh.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import process from 'node:process';
/* global fetch, AbortSignal, URL -- Node's own (this file runs on Node only) */

const SERVICES_DIR = process.env.SERVICES_DIR ?? '/var/tmp/instance-images-test/services';
const SSH_DIR = process.env.II_SSH_DIR ?? '/var/tmp/instance-images-test/hypervisor/ssh';
const SSH_PORT = Number(process.env.II_SSH_PORT ?? 2222);

/** `export NAME=value …` lines of the env file scripts/start-services.sh writes. */
function servicesEnv() {
  const values = {};
  let text;
  try {
    text = readFileSync(`${SERVICES_DIR}/env.sh`, 'utf8');
  } catch {
    return values;
  }
  for (const line of text.split('\n')) {
    const match = /^export\s+(.*)$/.exec(line.trim());
    for (const pair of match?.[1]?.split(/\s+/) ?? []) {
      const eq = pair.indexOf('=');
      if (eq > 0) values[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return values;
}

function listening(port) {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(3000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

const onPath = (tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;

async function hypervisorMissing() {
  const virsh = spawnSync('virsh', ['-c', 'qemu:///system', 'version'], { encoding: 'utf8' });
  if (virsh.status !== 0) return virsh.error ? 'virsh is not installed' : 'libvirt is not answering on qemu:///system';
  const tool = ['qemu-img', 'qemu-io', 'xorriso'].find((name) => !onPath(name));
  if (tool) return `${tool} is not installed`;
  if (!existsSync(`${SSH_DIR}/client_ed25519`) || !existsSync(`${SSH_DIR}/host_ed25519_key.pub`)) return `no SSH keys in ${SSH_DIR}`;
  if (!(await listening(SSH_PORT))) return `sshd is not listening on 127.0.0.1:${SSH_PORT}`;
  return null;
}

async function s3Missing(env) {
  const endpoint = process.env.AWS_ENDPOINT_URL ?? env.AWS_ENDPOINT_URL;
  if (!endpoint || !(process.env.AWS_ACCESS_KEY_ID ?? env.AWS_ACCESS_KEY_ID)) return `no S3 endpoint and keys (${SERVICES_DIR}/env.sh)`;
  try {
    const response = await fetch(endpoint, { signal: AbortSignal.timeout(3000) });
    await response.arrayBuffer();
    return null;
  } catch {
    return `radosgw is not answering at ${endpoint}`;
  }
}

async function postgresMissing(env) {
  const url = process.env.DATABASE_URL || env.DATABASE_URL || 'postgres://postgres@127.0.0.1:55432/test';
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch {
    return `PostgreSQL is not answering at ${url.replace(/:[^:@/]*@/, ':***@')}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Redis answers PING (a RESP exchange, no client library needed). */
function redisMissing(env) {
  const url = new URL(process.env.REDIS_URL || env.REDIS_URL || 'redis://127.0.0.1:6390');
  const port = Number(url.port || 6379);
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname, port });
    const done = (reason) => {
      socket.destroy();
      resolve(reason);
    };
    socket.setTimeout(3000, () => done(`Redis is not answering at ${url.host}`));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG') ? null : `Redis at ${url.host} did not answer PING`));
    socket.once('error', () => done(`Redis is not answering at ${url.host}`));
  });
}

const env = servicesEnv();
const [hypervisor, s3, postgres, redis] = await Promise.all([hypervisorMissing(), s3Missing(env), postgresMissing(env), redisMissing(env)]);
const lines = [];
if (hypervisor) lines.push(`hypervisor\t${hypervisor}`);
if (s3 || postgres || redis) lines.push(`services\t${[s3, postgres, redis].filter(Boolean).join('; ')}`);
if (!existsSync('/usr/bin/chromium')) lines.push('browser\t/usr/bin/chromium is not installed');
if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
