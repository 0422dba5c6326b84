/**
 * Capture into S3, end to end (node --import tsx scripts/bench/capture-s3.ts).
 *
 * A running TCG guest (2 GiB virtual disk holding DATA_MIB of random data, default 1024) reached
 * over the real sshd is captured into the real radosgw two ways, in the same run:
 *  - bare pipeline, as an operator would script it from the panel host with the OpenSSH client:
 *    `ssh hv virsh backup-begin` (pull mode, NBD on a unix socket), `ssh hv qemu-img convert` into
 *    a scratch file, `ssh hv virsh domjobabort`, then `ssh hv cat FILE` piped into a plain
 *    lib-storage Upload;
 *  - ours: the libvirt driver over the SSH executor, streaming into the S3 storage driver behind
 *    the core wrapper (sha256 + verify) — what the image service does for an S3 storage.
 * The two alternate RUNS times (default 3). Prints each one's median, spread (min–max) and runs,
 * the ratio ours/bare (goal ≤ 1.1), the bare pipeline's per-step and our per-stage timeline (median
 * start–end; ours from the driver's `stage` hook), and the panel process's peak RSS while capturing a small and the large disk
 * (goal: constant in disk size).
 * Environment: RUNS, DATA_MIB, VERIFY=0 (the driver's `verify: false`). Hold the shared lock:
 * `flock /tmp/itest.lock npm run bench -- capture-s3`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { Upload } from '@aws-sdk/lib-storage';
import { createSshExecutor } from '../../drivers/exec/ssh';
import { createLibvirtDriver } from '../../drivers/hypervisor/libvirt';
import { s3StorageDriver } from '../../drivers/storage/s3';
import { wrapStorageDriver } from '../../src/storage';
import { sshTarget, SSH_DIR, SSH_PORT, SSH_USER } from '../../test/integration/exec/ssh-target';
import {
  adminClient,
  createBucket,
  deleteBucket,
  driverOptions,
  freshBucketName,
  loadS3TestEnv,
} from '../../test/integration/storage-s3/s3-env';
import type { TestGuest } from '../../test/support/guests';
import { guestWithRandomData, median } from '../lib/bench';

const RUNS = Number(process.env.RUNS ?? 3);
const DATA_MIB = Number(process.env.DATA_MIB ?? 1024);
const scratch = '/var/tmp/ii-bench-s3';

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** Peak RSS of this process while `fn` runs (sampled every 20 ms). */
async function withPeakRss<T>(fn: () => Promise<T>): Promise<{ value: T; peak: number }> {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  try {
    const value = await fn();
    return { value, peak: Math.max(peak, process.memoryUsage.rss()) };
  } finally {
    clearInterval(timer);
  }
}

async function main(): Promise<void> {
  const target = await sshTarget();
  const s3 = await loadS3TestEnv();
  if ('skip' in target || !s3.env) throw new Error(`services missing: ${'skip' in target ? target.skip : s3.missing}`);
  const env = s3.env;
  const client = adminClient(env);
  const bucket = freshBucketName('bench-capture');
  await createBucket(client, bucket);
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  const hypervisor = { id: 'hv', name: 'bench', locationId: 'l', connection: target.connection, scratchDir: `${scratch}/driver` };
  const executor = createSshExecutor(target.connection);
  let t0 = 0;
  let stages = new Map<string, { start: number; end: number }>();
  const onStage = ({ stage, phase }: { stage: string; phase: 'start' | 'end' }) => {
    const now = performance.now() - t0;
    const entry = stages.get(stage) ?? { start: now, end: now };
    if (phase === 'end') entry.end = now;
    stages.set(stage, entry);
  };
  const driver = createLibvirtDriver(hypervisor, executor, { verify: process.env.VERIFY !== '0', hooks: { stage: onStage } });
  const disk = wrapStorageDriver(s3StorageDriver.create(driverOptions(env, bucket), {}));
  const guests: TestGuest[] = [];
  try {
    process.stdout.write(`preparing guests (${DATA_MIB} MiB and ${DATA_MIB / 4} MiB of random data on 2 GiB disks)... `);
    const large = guestWithRandomData(DATA_MIB);
    guests.push(large);
    const small = guestWithRandomData(DATA_MIB / 4);
    guests.push(small);
    console.log('done');

    const sshArgs = [
      '-i',
      `${SSH_DIR}/client_ed25519`,
      '-p',
      String(SSH_PORT),
      '-o',
      `UserKnownHostsFile=${SSH_DIR}/known_hosts`,
      '-o',
      'BatchMode=yes',
      '-c',
      'aes128-gcm@openssh.com',
      `${SSH_USER}@127.0.0.1`,
    ];
    const bare = async (guest: TestGuest, key: string) => {
      const sock = `${scratch}/bare.sock`;
      const out = `${scratch}/bare.qcow2`;
      const xml = `${scratch}/bare-backup.xml`;
      writeFileSync(
        xml,
        `<domainbackup mode='pull'><server transport='unix' socket='${sock}'/><disks><disk name='vda' backup='yes' type='file'><scratch file='${scratch}/bare-scratch.qcow2'/></disk><disk name='vdb' backup='no'/></disks></domainbackup>`,
      );
      const onHv = (name: string, ...command: string[]) => {
        onStage({ stage: name, phase: 'start' });
        execFileSync('ssh', [...sshArgs, command.join(' ')], { stdio: ['ignore', 'ignore', 'inherit'] });
        onStage({ stage: name, phase: 'end' });
      };
      onHv('begin', 'virsh', '-q', '-c', 'qemu:///system', 'backup-begin', '--domain', guest.name, '--backupxml', xml);
      try {
        onHv('convert', 'qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', `'nbd+unix:///vda?socket=${sock}'`, out);
      } finally {
        onHv('abort', 'virsh', '-q', '-c', 'qemu:///system', 'domjobabort', '--domain', guest.name);
      }
      onStage({ stage: 'transfer', phase: 'start' });
      const cat = spawn('ssh', [...sshArgs, `cat ${out}`], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Upload({ client, params: { Bucket: bucket, Key: key, Body: cat.stdout }, partSize: 8 * 2 ** 20, queueSize: 4 }).done();
      onStage({ stage: 'transfer', phase: 'end' });
      rmSync(out, { force: true });
    };
    const ours = async (guest: TestGuest, key: string) => {
      const result = await driver.capture({
        domainName: guest.name,
        output: { kind: 'stream', consume: async (stream, size) => void (await disk.put(key, stream, { size })) },
      });
      return result.sizeBytes;
    };

    const bareTimes: number[] = [];
    const ourTimes: number[] = [];
    const timelines: Array<typeof stages> = [];
    const bareTimelines: Array<typeof stages> = [];
    let size = 0;
    for (let i = 0; i < RUNS; i++) {
      // Alternate, starting with the other one each round.
      const runBare = async () => {
        stages = new Map();
        t0 = performance.now();
        await bare(large, `bare-${i}.qcow2`);
        bareTimes.push(performance.now() - t0);
        bareTimelines.push(stages);
      };
      const runOurs = async () => {
        stages = new Map();
        t0 = performance.now();
        size = await ours(large, `ours-${i}.qcow2`);
        ourTimes.push(performance.now() - t0);
        timelines.push(stages);
      };
      for (const step of i % 2 === 0 ? [runBare, runOurs] : [runOurs, runBare]) await step();
    }
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    const line = (label: string, times: number[]) =>
      `${label} ${s(median(times))}, spread ${s(Math.min(...times))}–${s(Math.max(...times))}, runs: ${times.map(s).join(', ')}`;
    const ratio = median(ourTimes) / median(bareTimes);
    console.log(`image ${mib(size)}; ${RUNS} runs each, alternating${process.env.VERIFY === '0' ? '; VERIFY=0' : ''}`);
    console.log(line('bare pipeline', bareTimes));
    console.log(line('ours         ', ourTimes));
    const timeline = (label: string, of: Array<typeof stages>) => {
      const names = [...new Set(of.flatMap((t) => [...t.keys()]))];
      const rows = names.map((name) => {
        const entries = of.map((t) => t.get(name)).filter((x) => x !== undefined);
        return { name, start: median(entries.map((x) => x.start)), end: median(entries.map((x) => x.end)) };
      });
      rows.sort((a, b) => a.start - b.start);
      const text = rows.map((r) => `${r.name} ${(r.start / 1000).toFixed(2)}–${(r.end / 1000).toFixed(2)}`).join(', ');
      console.log(`${label} stages (median start–end, s): ${text}`);
    };
    timeline('bare', bareTimelines);
    timeline('our ', timelines);
    // Each run's own stages (a slow run shows where it lost its time).
    const spans = (of: Array<typeof stages>) =>
      of.map((t) => [...t].map(([name, x]) => `${name} ${((x.end - x.start) / 1000).toFixed(2)}`).join(' ')).join(' | ');
    console.log(`bare runs' steps (s): ${spans(bareTimelines)}`);
    console.log(`our runs' stages (s): ${spans(timelines)}`);
    console.log(`ratio ours/bare ${ratio.toFixed(2)} (goal ≤ 1.10)`);
    const smallRss = await withPeakRss(() => ours(small, 'rss-small.qcow2'));
    const largeRss = await withPeakRss(() => ours(large, 'rss-large.qcow2'));
    console.log(
      `peak RSS: ${DATA_MIB / 4} MiB disk ${mib(smallRss.peak)}, ${DATA_MIB} MiB disk ${mib(largeRss.peak)}, ratio ${(largeRss.peak / smallRss.peak).toFixed(2)} (goal: constant)`,
    );
    process.exitCode = ratio <= 1.1 ? 0 : 1;
  } finally {
    for (const guest of guests) guest.remove();
    await executor.close();
    await disk.close();
    await deleteBucket(client, bucket).catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
    execFileSync('radosgw-admin', ['gc', 'process', '--include-all'], {
      env: { ...process.env, CEPH_CONF: '/var/tmp/instance-images-test/services/ceph/ceph.conf' },
      stdio: 'ignore',
    });
  }
}

await main();
