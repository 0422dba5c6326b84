/**
 * Benchmark of the local storage driver over SSH (the real sshd on 127.0.0.1:2222, started by
 * scripts/setup-hypervisor.sh).
 *
 * 1. Throughput: put of a 1 GiB file through the driver over SSH vs the OpenSSH client doing
 *    `ssh ... 'cat > file'` with the same file, alternating, in the same run (goal ≥ 0.9×). The
 *    driver's put also fsyncs the file before renaming it into place, which `cat > file` does not,
 *    so a second baseline `cat > file && sync file` is shown too. Shown for the raw driver (direct
 *    I/O, the default, and buffered writes) and through the core wrapper (sha256 + size verification).
 * 2. Peak RSS streaming 1 GiB and 4 GiB of generated data through put and through get, each in a
 *    fresh child process (peak RSS never goes down within a process); goal < 150 MB and the 4 GiB
 *    run within 10 % of the 1 GiB run.
 * Every file is removed at the end.
 *
 * Run: node --import tsx scripts/bench/storage-local.ts [--runs N] [--size-mib N] [--rss-only] [--no-rss] [--cap-young-gen] [--only TEXT]
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { CHILD_NODE_FLAGS, flag, generated, GiB, median, MiB } from '../lib/bench';
import { createSshExecutor } from '../../drivers/exec/ssh';
import { localStorageDriver } from '../../drivers/storage/local';
import type { StorageDriver } from '../../src/ports/storage-driver';
import { wrapStorageDriver } from '../../src/storage/disk';
import { SSH_DIR, SSH_HOST, SSH_PORT, SSH_USER, sshTarget } from '../../test/integration/exec/ssh-target';

const self = fileURLToPath(import.meta.url);

const RUNS = Number(flag('runs') ?? 5);
const SIZE = Number(flag('size-mib') ?? 1024) * MiB;
/** `--only TEXT`: measure only the cases whose name contains TEXT (and the baseline). */
const ONLY = flag('only');

const rate = (bytes: number, seconds: number) => `${(bytes / MiB / seconds).toFixed(0)} MiB/s`;

async function connection() {
  const target = await sshTarget();
  if ('skip' in target) throw new Error(target.skip);
  return target.connection;
}

function driverFor(executor: ReturnType<typeof createSshExecutor>, root: string, directIo = true): StorageDriver {
  return localStorageDriver.create({ path: root, directIo }, { executor });
}

/** The OpenSSH client writing `file` to `remotePath` with `cat` (optionally fsyncing it). */
function opensshPut(file: string, remotePath: string, cipher: string | null, sync: boolean): Promise<number> {
  const args = [
    '-p',
    String(SSH_PORT),
    '-i',
    `${SSH_DIR}/client_ed25519`,
    '-o',
    `UserKnownHostsFile=${SSH_DIR}/known_hosts`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
  ];
  if (cipher) args.push('-c', cipher);
  const command = sync ? `cat > '${remotePath}' && sync '${remotePath}'` : `cat > '${remotePath}'`;
  args.push(`${SSH_USER}@${SSH_HOST}`, command);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const ssh = spawn('ssh', args, { stdio: ['pipe', 'inherit', 'inherit'] });
    createReadStream(file).pipe(ssh.stdin);
    ssh.on('error', reject);
    ssh.on('close', (code) => (code === 0 ? resolve((performance.now() - started) / 1000) : reject(new Error(`ssh exited with ${code}`))));
  });
}

/** Child mode: stream `size` bytes through put or get once, print seconds and peak RSS as JSON. */
async function child(mode: string, root: string, key: string, size: number): Promise<void> {
  const executor = createSshExecutor(await connection());
  const disk = wrapStorageDriver(driverFor(executor, root));
  await executor.run(['true']); // connect outside the measurement
  const idleRssBytes = process.memoryUsage().rss;
  const started = performance.now();
  if (mode === 'put') {
    const result = await disk.put(key, generated(size), { size });
    if (result.size !== size) throw new Error(`put wrote ${result.size} bytes`);
  } else {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of await disk.get(key)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    if (bytes !== size) throw new Error(`get read ${bytes} bytes, expected ${size}`);
  }
  const seconds = (performance.now() - started) / 1000;
  await executor.close();
  console.log(JSON.stringify({ seconds, idleRssBytes, maxRssBytes: process.resourceUsage().maxRSS * 1024 }));
}

/**
 * The child script as plain JavaScript: measured without tsx, whose loader thread alone costs tens
 * of MiB (an application runs the built package, not TypeScript through a loader). Bundled with
 * esbuild (tsup's and tsx's bundler); falls back to running the TypeScript through tsx.
 */
/** Where the bundled child goes: inside the repository, so that the external ssh2 resolves. */
const BUNDLE = fileURLToPath(new URL('../../node_modules/.cache/instance-images-bench/storage-local-bench.mjs', import.meta.url));

async function childCommand(): Promise<string[]> {
  try {
    const esbuild = (await import('esbuild')) as { build(options: Record<string, unknown>): Promise<unknown> };
    const outfile = BUNDLE;
    await esbuild.build({
      entryPoints: [self],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile,
      external: ['ssh2'],
      logLevel: 'error',
    });
    return [...CHILD_NODE_FLAGS, outfile];
  } catch (error) {
    console.log(`  (esbuild unavailable, children run through tsx: ${error instanceof Error ? error.message : String(error)})`);
    return [...CHILD_NODE_FLAGS, '--import', 'tsx', self];
  }
}

function runChild(
  command: string[],
  mode: string,
  root: string,
  key: string,
  size: number,
): Promise<{ seconds: number; idleRssBytes: number; maxRssBytes: number }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...command, '--child', mode, root, key, String(size)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: process.cwd(),
    });
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    proc.on('close', (code) => {
      if (code !== 0) return reject(new Error(`child ${mode} exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as { seconds: number; idleRssBytes: number; maxRssBytes: number });
      } catch (error) {
        reject(error as Error);
      }
    });
  });
}

async function throughput(root: string, local: string): Promise<boolean> {
  const source = `${local}/source.bin`;
  await pipeline(generated(SIZE, true), createWriteStream(source));
  console.log(`source: ${(statSync(source).size / MiB).toFixed(0)} MiB; ${RUNS} alternating runs, medians`);
  const executor = createSshExecutor(await connection());
  await executor.run(['true']);
  const raw = driverFor(executor, root);
  const buffered = driverFor(executor, root, false);
  const wrapped = wrapStorageDriver(raw);
  const times: Record<string, number[]> = {
    'openssh cat (default cipher)': [],
    'openssh cat (aes128-gcm)': [],
    'openssh cat + sync (aes128-gcm)': [],
    'driver put (raw)': [],
    'driver put (raw, directIo false)': [],
    'driver put (wrapper: sha256 + verify)': [],
  };
  const remove = (...paths: string[]) => executor.run(['rm', '-f', '--', ...paths]);
  // Each measurement starts with no dirty data from the previous one (its writeback would compete).
  const settle = () => executor.run(['sync']);
  for (let run = 0; run < RUNS; run++) {
    const timed = async (name: string, operation: () => Promise<unknown>, output: string) => {
      await settle();
      const started = performance.now();
      await operation();
      times[name]?.push((performance.now() - started) / 1000);
      await remove(output);
    };
    const cases: [string, () => Promise<unknown>, string][] = [
      ['openssh cat (default cipher)', () => opensshPut(source, `${root}/baseline`, null, false), `${root}/baseline`],
      ['openssh cat (aes128-gcm)', () => opensshPut(source, `${root}/baseline`, 'aes128-gcm@openssh.com', false), `${root}/baseline`],
      ['openssh cat + sync (aes128-gcm)', () => opensshPut(source, `${root}/baseline`, 'aes128-gcm@openssh.com', true), `${root}/baseline`],
      [
        'driver put (raw)',
        () => raw.put('driver.bin', createReadStream(source, { highWaterMark: MiB }), { size: SIZE }),
        `${root}/driver.bin`,
      ],
      [
        'driver put (raw, directIo false)',
        () => buffered.put('driver.bin', createReadStream(source, { highWaterMark: MiB }), { size: SIZE }),
        `${root}/driver.bin`,
      ],
      [
        'driver put (wrapper: sha256 + verify)',
        () => wrapped.put('driver.bin', createReadStream(source, { highWaterMark: MiB }), { size: SIZE }),
        `${root}/driver.bin`,
      ],
    ];
    // The order rotates from run to run, so that no case always follows the same neighbour.
    for (let i = 0; i < cases.length; i++) {
      const [name, operation, output] = cases[(i + run) % cases.length]!;
      if (!ONLY || name.includes(ONLY) || name === 'openssh cat (aes128-gcm)') await timed(name, operation, output);
    }
  }
  await executor.close();
  const medians = Object.fromEntries(Object.entries(times).map(([name, values]) => [name, median(values)]));
  for (const [name, seconds] of Object.entries(medians))
    console.log(
      `  ${name.padEnd(40)} ${seconds.toFixed(2)} s  ${rate(SIZE, seconds)}  (runs: ${(times[name] ?? []).map((value) => value.toFixed(2)).join(' ')})`,
    );
  const baseline = medians['openssh cat (aes128-gcm)'] ?? NaN;
  const baselineSync = medians['openssh cat + sync (aes128-gcm)'] ?? NaN;
  const driverRaw = medians['driver put (raw)'] ?? NaN;
  const driverWrapped = medians['driver put (wrapper: sha256 + verify)'] ?? NaN;
  const ratio = baseline / driverRaw;
  console.log(`ratio driver put (raw) / openssh cat (aes128-gcm): ${ratio.toFixed(2)}x (goal >= 0.90)`);
  console.log(`ratio driver put (raw) / openssh cat + sync:      ${(baselineSync / driverRaw).toFixed(2)}x`);
  console.log(
    `ratio buffered put / openssh cat (aes128-gcm):    ${(baseline / (medians['driver put (raw, directIo false)'] ?? NaN)).toFixed(2)}x`,
  );
  console.log(`ratio wrapped put / openssh cat (aes128-gcm):     ${(baseline / driverWrapped).toFixed(2)}x`);
  console.log(
    `ratio wrapped put / openssh cat (default cipher): ${((medians['openssh cat (default cipher)'] ?? NaN) / driverWrapped).toFixed(2)}x`,
  );
  return ratio >= 0.9;
}

async function memory(root: string): Promise<boolean> {
  const results: Record<string, number> = {};
  const command = await childCommand();
  for (const size of [GiB, 4 * GiB]) {
    const key = `rss-${size / GiB}g.bin`;
    try {
      for (const mode of ['put', 'get']) {
        const { seconds, idleRssBytes, maxRssBytes } = await runChild(command, mode, root, key, size);
        results[`${mode} ${size / GiB} GiB`] = maxRssBytes;
        console.log(
          `  ${mode} ${size / GiB} GiB: peak RSS ${(maxRssBytes / MiB).toFixed(0)} MiB (${(maxRssBytes / 1e6).toFixed(0)} MB; ${(idleRssBytes / MiB).toFixed(0)} MiB before streaming), ${seconds.toFixed(1)} s (${rate(size, seconds)})`,
        );
      }
    } finally {
      rmSync(`${root}/${key}`, { force: true });
    }
  }
  let ok = true;
  for (const mode of ['put', 'get']) {
    const small = results[`${mode} 1 GiB`] ?? NaN;
    const large = results[`${mode} 4 GiB`] ?? NaN;
    const growth = large / small - 1;
    const fine = large < 150 * 1e6 && small < 150 * 1e6 && growth <= 0.1;
    ok &&= fine;
    console.log(
      `${mode}: 4 GiB vs 1 GiB peak RSS ${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)} % (goal < 150 MB and within 10 %): ${fine ? 'met' : 'MISSED'}`,
    );
  }
  return ok;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') {
    const [mode, root, key, size] = process.argv.slice(3);
    await child(mode ?? 'put', root ?? '', key ?? '', Number(size));
    return;
  }
  // The hypervisor is this machine: the storage root is a local directory reached over SSH.
  const root = mkdtempSync('/var/tmp/ii-bench-local-remote-');
  const local = mkdtempSync('/var/tmp/ii-bench-local-source-');
  let ok = true;
  try {
    if (!process.argv.includes('--rss-only')) {
      console.log(`local storage over SSH: put of ${(SIZE / MiB).toFixed(0)} MiB vs the OpenSSH client`);
      ok = (await throughput(root, local)) && ok;
    }
    if (!process.argv.includes('--no-rss')) {
      console.log('peak RSS streaming generated data through put and get over SSH (fresh process each)');
      ok = (await memory(root)) && ok;
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(local, { recursive: true, force: true });
    rmSync(BUNDLE, { force: true });
  }
  process.exitCode = ok ? 0 : 1;
}

await main();
