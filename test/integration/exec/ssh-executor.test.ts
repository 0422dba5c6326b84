import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import { hostKeyFingerprint } from '../../../drivers/exec/host-key';
import { isInstanceImagesError } from '../../../src/errors';
import { sshTarget, SSH_DIR, SSH_HOST, SSH_PORT } from './ssh-target';
import { startTcpProxy, type TcpProxy } from './tcp-proxy';

const target = await sshTarget();
const suite = 'skip' in target ? describe.skip : describe;

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (isInstanceImagesError(error)) return { code: error.code, message: error.message };
    return { code: 'not an InstanceImagesError', message: String(error) };
  }
  return { code: 'resolved', message: '' };
}

function collector(): { stream: Writable; data: () => Buffer } {
  const chunks: Buffer[] = [];
  return { stream: new Writable({ write: (chunk: Buffer, _e, cb) => (chunks.push(chunk), cb()) }), data: () => Buffer.concat(chunks) };
}

async function remoteProcessGone(marker: string): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    try {
      execFileSync('pgrep', ['-f', marker]);
    } catch {
      return true; // pgrep exits 1 when nothing matches
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

suite(`SSH executor against the real sshd${'skip' in target ? ` (skipped: ${target.skip})` : ''}`, () => {
  if ('skip' in target) return;
  const { connection, hostPublicKey } = target;
  const keyBody = connection.privateKey.split('\n')[1] ?? connection.privateKey;
  let proxy: TcpProxy;
  let tmp: string;

  beforeAll(async () => {
    proxy = await startTcpProxy(SSH_HOST, SSH_PORT);
    tmp = mkdtempSync('/var/tmp/ii-ssh-test-');
  });
  afterAll(async () => {
    await proxy.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('accepts the host key pinned as a fingerprint, a public key line or a known_hosts line', async () => {
    const blob = Buffer.from(hostPublicKey.split(/\s+/)[1] ?? '', 'base64');
    const fingerprint = hostKeyFingerprint(blob);
    const keygen = execFileSync('ssh-keygen', ['-lf', `${SSH_DIR}/host_ed25519_key.pub`], { encoding: 'utf8' });
    expect(keygen).toContain(fingerprint);
    for (const hostKey of [fingerprint, hostPublicKey, `[${SSH_HOST}]:${SSH_PORT} ${hostPublicKey}`, `# pinned\n${hostPublicKey}\n`]) {
      const executor = createSshExecutor({ ...connection, hostKey });
      try {
        const result = await executor.run(['id', '-u']);
        expect(result).toEqual({ exitCode: 0, stdout: '0\n', stderr: '' });
      } finally {
        await executor.close();
      }
    }
  });

  it('refuses a host whose key does not match the pin (HOST_KEY_MISMATCH), without leaking the client key', async () => {
    const otherKey = execFileSync('sh', ['-c', `ssh-keygen -q -t ed25519 -N '' -f ${tmp}/other >/dev/null && cat ${tmp}/other.pub`], {
      encoding: 'utf8',
    });
    for (const hostKey of [otherKey, `SHA256:${createHash('sha256').update('not the key').digest('base64').replace(/=+$/, '')}`]) {
      const executor = createSshExecutor({ ...connection, hostKey });
      const error = await failure(executor.run(['touch', `${tmp}/should-not-exist`]));
      expect(error.code).toBe('HOST_KEY_MISMATCH');
      expect(error.message).toContain(hostKeyFingerprint(Buffer.from(hostPublicKey.split(/\s+/)[1] ?? '', 'base64')));
      expect(error.message).not.toContain(keyBody);
      await executor.close();
    }
    expect(execFileSync('ls', ['-A', tmp], { encoding: 'utf8' })).not.toContain('should-not-exist');
  });

  it('reports an unauthorized key, a wrong passphrase and a refused port as errors without secrets', async () => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret-passphrase-123', '-f', `${tmp}/stranger`]);
    const strangerKey = readFileSync(`${tmp}/stranger`, 'utf8');
    const unauthorized = createSshExecutor({ ...connection, privateKey: strangerKey, passphrase: 'secret-passphrase-123' });
    const denied = await failure(unauthorized.run(['true']));
    expect(denied.code).toBe('HYPERVISOR_UNREACHABLE');
    expect(denied.message).toMatch(/authentication/);
    expect(denied.message).not.toContain('secret-passphrase-123');
    expect(denied.message).not.toContain(strangerKey.split('\n')[1]);
    const wrongPassphrase = createSshExecutor({ ...connection, privateKey: strangerKey, passphrase: 'wrong-passphrase-456' });
    const unreadable = await failure(wrongPassphrase.run(['true']));
    expect(unreadable.code).toBe('VALIDATION_FAILED');
    expect(unreadable.message).not.toContain('wrong-passphrase-456');
    const refused = createSshExecutor({ ...connection, port: 1 });
    expect((await failure(refused.run(['true']))).code).toBe('HYPERVISOR_UNREACHABLE');
    expect(refused.label).not.toContain(keyBody);
  });

  it('captures exit codes and stderr, and streams stdin and stdout both ways with backpressure', async () => {
    const executor = createSshExecutor(connection);
    try {
      expect(await executor.run(['sh', '-c', 'echo out; echo err >&2; exit 7'])).toEqual({ exitCode: 7, stdout: 'out\n', stderr: 'err\n' });
      const data = randomBytes(24 * 1024 * 1024);
      const sink = collector();
      const echoed = await executor.run(['cat'], {
        stdin: Readable.from([data.subarray(0, 5e6), data.subarray(5e6)]),
        stdout: sink.stream,
      });
      expect(echoed.exitCode).toBe(0);
      expect(sink.data().equals(data)).toBe(true);
      const streamed = await executor.stream(['head', '-c', String(16 * 1024 * 1024), '/dev/zero']);
      let bytes = 0;
      for await (const chunk of streamed.stdout) bytes += (chunk as Buffer).length;
      expect(bytes).toBe(16 * 1024 * 1024);
      expect((await streamed.done).exitCode).toBe(0);
    } finally {
      await executor.close();
    }
  });

  it('reads its connection into one reused buffer and passes every byte on intact, whatever its size (or with ssh2 reading)', async () => {
    const data = randomBytes(40 * 1024 * 1024 + 4321);
    const file = `${tmp}/bulk.bin`;
    writeFileSync(file, data);
    for (const readBufferBytes of [undefined, 16 * 1024, 0]) {
      const executor = createSshExecutor(connection, readBufferBytes === undefined ? {} : { readBufferBytes });
      try {
        // Four reads side by side: their packets interleave on the one connection.
        const reads = await Promise.all(
          [0, 1, 2, 3].map(async () => {
            const streamed = await executor.stream(['cat', file]);
            const hash = createHash('sha256');
            for await (const chunk of streamed.stdout) hash.update(chunk as Buffer);
            expect((await streamed.done).exitCode).toBe(0);
            return hash.digest('hex');
          }),
        );
        expect(new Set(reads)).toEqual(new Set([createHash('sha256').update(data).digest('hex')]));
      } finally {
        await executor.close();
      }
    }
  });

  // A command that ends at once may have its exit status in the same read as the reply to the exec
  // request: ssh2 emits it before an awaiting caller could listen. Each must still report its code.
  it('reports the exit code of commands that end at once, however many run side by side', async () => {
    const executor = createSshExecutor(connection);
    try {
      for (let round = 0; round < 10; round++) {
        const results = await Promise.all(Array.from({ length: 16 }, (_, i) => executor.run(['sh', '-c', `exit ${i % 3}`])));
        expect(results.map((r) => r.exitCode)).toEqual(Array.from({ length: 16 }, (_, i) => i % 3));
      }
    } finally {
      await executor.close();
    }
  });

  it('kills the remote command on abort (CANCELLED) and on timeout (TIMEOUT)', async () => {
    const executor = createSshExecutor(connection);
    try {
      const marker = `31.${Date.now() % 100000}1`;
      const controller = new AbortController();
      const running = executor.run(['sleep', marker], { signal: controller.signal });
      await new Promise((resolve) => setTimeout(resolve, 500));
      controller.abort();
      expect((await failure(running)).code).toBe('CANCELLED');
      expect(await remoteProcessGone(`sleep ${marker}`)).toBe(true);
      const marker2 = `32.${Date.now() % 100000}2`;
      expect((await failure(executor.run(['sleep', marker2], { timeoutMs: 500 }))).code).toBe('TIMEOUT');
      expect(await remoteProcessGone(`sleep ${marker2}`)).toBe(true);
      // the connection is still usable afterwards
      expect((await executor.run(['echo', 'still here'])).stdout).toBe('still here\n');
    } finally {
      await executor.close();
    }
  });

  it('reports a dropped connection as HYPERVISOR_UNREACHABLE and reconnects for the next command', async () => {
    const executor = createSshExecutor({ ...connection, port: proxy.port });
    try {
      const running = executor.run(['sleep', '8']);
      await new Promise((resolve) => setTimeout(resolve, 500));
      proxy.dropAll();
      expect((await failure(running)).code).toBe('HYPERVISOR_UNREACHABLE');
      expect((await executor.run(['echo', 'again'])).stdout).toBe('again\n');
    } finally {
      await executor.close();
    }
  });

  it('turns off Nagle on its connections, so a remote command never waits for a delayed ACK', async () => {
    // SSH's small packets (channel open, exec, exit status, an NBD handshake's options) each waited
    // for the peer's delayed ACK without TCP_NODELAY: ~88 ms per remote command, ~130 ms per NBD
    // handshake on this machine (npm run bench -- ssh measures it).
    const spy = vi.spyOn(Socket.prototype, 'setNoDelay');
    const executor = createSshExecutor({ ...connection, port: proxy.port });
    try {
      await executor.run(['true']);
      const sockets = (spy.mock.contexts as Socket[]).filter(
        (socket, i) => spy.mock.calls[i]?.[0] !== false && socket.remotePort === proxy.port,
      );
      expect(sockets.length).toBeGreaterThanOrEqual(1);
    } finally {
      spy.mockRestore();
      await executor.close();
    }
  });

  it('reuses connections and bounds connections and channels', async () => {
    const before = proxy.accepted;
    const executor = createSshExecutor({ ...connection, port: proxy.port }, { maxConnections: 2, maxChannelsPerConnection: 3 });
    try {
      let peak = 0;
      const results = await Promise.all(
        Array.from({ length: 12 }, async (_, i) => {
          const result = await executor.run(['sh', '-c', 'sleep 0.3; echo "$1"', 'sh', String(i)]);
          peak = Math.max(peak, executor.connectionCount);
          return result.stdout;
        }),
      );
      expect(results).toEqual(Array.from({ length: 12 }, (_, i) => `${i}\n`));
      expect(peak).toBeLessThanOrEqual(2);
      expect(proxy.accepted - before).toBeLessThanOrEqual(2);
      const accepted = proxy.accepted;
      await executor.run(['true']);
      expect(proxy.accepted).toBe(accepted);
      await executor.close();
      expect(executor.connectionCount).toBe(0);
    } finally {
      await executor.close();
    }
  });
});
