import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { SshConnection } from '../../../drivers/exec/ssh';

/** The test hypervisor's sshd (started by scripts/setup-hypervisor.sh). */
export const SSH_DIR = process.env.II_SSH_DIR ?? '/var/tmp/instance-images-test/hypervisor/ssh';
export const SSH_HOST = '127.0.0.1';
export const SSH_PORT = Number(process.env.II_SSH_PORT ?? 2222);
/**
 * The test hypervisor's SSH account: uid 0 with a plain shell and an empty home
 * (scripts/setup-hypervisor.sh), as a hypervisor's root login is. Not `root` itself: on a developer's
 * machine root's ~/.bashrc may run tool set-up (pyenv here: 0.65 s), which bash sources for every
 * command sshd runs, and every remote command of every test and bench would pay it.
 */
export const SSH_USER = process.env.II_SSH_USER ?? 'ii-hv';

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(3000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * The SSH connection to the test sshd, or a reason why it is not available. With CI set, a missing
 * service is an error (the suite must fail, not skip).
 */
export async function sshTarget(port = SSH_PORT): Promise<{ connection: SshConnection; hostPublicKey: string } | { skip: string }> {
  const keyFile = `${SSH_DIR}/client_ed25519`;
  const hostKeyFile = `${SSH_DIR}/host_ed25519_key.pub`;
  let reason: string | null = null;
  if (!existsSync(keyFile) || !existsSync(hostKeyFile)) reason = `no SSH keys in ${SSH_DIR} (run scripts/setup-hypervisor.sh)`;
  else if (!(await reachable(SSH_HOST, SSH_PORT)))
    reason = `sshd is not listening on ${SSH_HOST}:${SSH_PORT} (run scripts/setup-hypervisor.sh)`;
  if (reason !== null) {
    if (process.env.CI) throw new Error(`Integration service missing in CI: ${reason}`);
    return { skip: reason };
  }
  const hostPublicKey = readFileSync(hostKeyFile, 'utf8').trim();
  return {
    connection: {
      type: 'ssh',
      host: SSH_HOST,
      port,
      username: SSH_USER,
      privateKey: readFileSync(keyFile, 'utf8'),
      hostKey: hostPublicKey,
    },
    hostPublicKey,
  };
}
