/**
 * The latency of the SSH executor against the test sshd (`npm run bench -- ssh`; hold the shared
 * lock: `flock /tmp/itest.lock ...`), each as a ratio against a baseline in the same run:
 * 1. a remote `true` over the pooled connection against OpenSSH's own client running `true` over a
 *    master connection it keeps open (`ControlMaster`: a new session channel on a live connection,
 *    like for like), alternating RUNS (default 20) times each;
 * 2. opening an NBD export over a stream-local channel (channel open + handshake) against the same
 *    handshake over the unix socket itself, on a `qemu-nbd` serving an empty qcow2.
 * With Nagle's algorithm on (`NODELAY=0` turns it back on, for comparison) each small SSH packet
 * waited for the peer's delayed ACK, ~40 ms on Linux: a remote command cost ~88 ms, a handshake ~130 ms.
 */
import { execFile, execFileSync } from 'node:child_process';
import { connect as netConnect, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createSshExecutor } from '../../drivers/exec/ssh';
import { connectNbd, BASE_ALLOCATION } from '../../drivers/nbd';
import { SSH_DIR, SSH_HOST, SSH_PORT, SSH_USER, sshTarget } from '../../test/integration/exec/ssh-target';
import { median } from '../lib/bench';

const RUNS = Number(process.env.RUNS ?? 20);
const exec = promisify(execFile);

if (process.env.NODELAY === '0') {
  // For comparison only: every setNoDelay(true) of this process is ignored.
  const original = Socket.prototype.setNoDelay;
  Socket.prototype.setNoDelay = function (this: Socket, noDelay?: boolean) {
    return noDelay === false ? original.call(this, false) : this;
  };
}

const ms = (values: number[]) =>
  `median ${median(values).toFixed(1)} ms, spread ${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)} ms`;

async function main(): Promise<void> {
  const target = await sshTarget();
  if ('skip' in target) throw new Error(target.skip);
  const work = mkdtempSync('/var/tmp/ii-bench-ssh-');
  const executor = createSshExecutor(target.connection);
  const control = `${work}/master`;
  writeFileSync(`${work}/known_hosts`, `[${SSH_HOST}]:${SSH_PORT} ${target.hostPublicKey}\n`);
  const sshArgs = [
    ...['-p', String(SSH_PORT), '-i', `${SSH_DIR}/client_ed25519`, '-l', SSH_USER],
    ...['-o', `UserKnownHostsFile=${work}/known_hosts`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes'],
    ...['-o', `ControlPath=${control}`],
  ];
  const nbdDir = `${work}/nbd`;
  try {
    // OpenSSH's master connection, kept open for the run.
    execFileSync('ssh', [...sshArgs, '-o', 'ControlMaster=yes', '-o', 'ControlPersist=yes', '-f', '-N', SSH_HOST]);
    await executor.run(['true']);
    await exec('ssh', [...sshArgs, SSH_HOST, 'true']);
    const ours: number[] = [];
    const openssh: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const cases = [
        async () => {
          const t = performance.now();
          await executor.run(['true']);
          ours.push(performance.now() - t);
        },
        async () => {
          const t = performance.now();
          await exec('ssh', [...sshArgs, SSH_HOST, 'true']);
          openssh.push(performance.now() - t);
        },
      ];
      for (let k = 0; k < cases.length; k++) await cases[(k + i) % cases.length]!();
    }
    console.log(`1. remote \`true\`, ${RUNS} runs each, alternating:`);
    console.log(`   SSH executor (pooled connection)      : ${ms(ours)}`);
    console.log(`   OpenSSH client over a master connection: ${ms(openssh)}`);
    console.log(`   ratio ${(median(ours) / median(openssh)).toFixed(2)}× OpenSSH's (lower is faster)`);

    execFileSync('mkdir', ['-p', nbdDir]);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', `${nbdDir}/disk.qcow2`, '1G']);
    execFileSync('qemu-nbd', [
      ...['--read-only', '--format=qcow2', '--fork', '--persistent', '--shared=4'],
      ...[`--pid-file=${nbdDir}/pid`, `--socket=${nbdDir}/sock`, '--export-name=vda', `${nbdDir}/disk.qcow2`],
    ]);
    const channel: number[] = [];
    const local: number[] = [];
    const handshake = async (open: () => Promise<Duplex>, into: number[]) => {
      const t = performance.now();
      const client = await connectNbd(await open(), { exportName: 'vda', metaContexts: [BASE_ALLOCATION] });
      into.push(performance.now() - t);
      await client.close();
    };
    const unix = () =>
      new Promise<Socket>((resolve, reject) => {
        const socket = netConnect(`${nbdDir}/sock`, () => resolve(socket));
        socket.once('error', reject);
      });
    for (let i = 0; i < RUNS; i++) {
      const cases = [() => handshake(() => executor.openStreamLocal!(`${nbdDir}/sock`), channel), () => handshake(unix, local)];
      for (let k = 0; k < cases.length; k++) await cases[(k + i) % cases.length]!();
    }
    console.log(`2. NBD open + handshake (structured replies, base:allocation, GO), ${RUNS} runs each, alternating:`);
    console.log(`   over an SSH stream-local channel: ${ms(channel)}`);
    console.log(`   over the unix socket itself     : ${ms(local)}`);
    console.log(`   the channel adds ${(median(channel) - median(local)).toFixed(1)} ms`);
  } finally {
    await executor.close();
    try {
      execFileSync('sh', ['-c', 'kill "$(cat "$1")" 2>/dev/null; true', 'sh', `${nbdDir}/pid`]);
      execFileSync('ssh', [...sshArgs, '-O', 'exit', SSH_HOST], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
