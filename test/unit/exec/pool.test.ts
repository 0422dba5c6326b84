import { describe, expect, it } from 'vitest';
import { createExecutorPool } from '../../../drivers/exec/pool';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import { isInstanceImagesError } from '../../../src/errors';
import type { HostHypervisor } from '../../../src/ports/host-directory';

const PIN = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKMPblHfNwR4jrRlxOSVRdlgdGg9RqqusLJrBgj6I3A6';
const SECRET_KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END OPENSSH PRIVATE KEY-----\n';

function hypervisor(id: string, host = '10.0.0.5'): HostHypervisor {
  return {
    id,
    name: `hv-${id}`,
    locationId: 'loc',
    connection: { type: 'ssh', host, port: 2222, username: 'root', privateKey: SECRET_KEY, hostKey: PIN },
  };
}

describe('executor pool', () => {
  it('gives the local executor for local hypervisors and one SSH executor per hypervisor', async () => {
    const pool = createExecutorPool();
    const local = pool.executorFor({ id: 'l', name: 'local', locationId: 'loc', connection: { type: 'local' } });
    expect(local.label).toBe('local');
    const a = pool.executorFor(hypervisor('a'));
    expect(pool.executorFor(hypervisor('a'))).toBe(a);
    expect(pool.executorFor(hypervisor('b'))).not.toBe(a);
    expect(a.label).toBe('ssh root@10.0.0.5:2222 (hv-a)');
    expect(a.label).not.toContain('secret');
    // changed connection settings (a new host, key or pin) get a fresh executor
    expect(pool.executorFor(hypervisor('a', '10.0.0.6'))).not.toBe(a);
    await pool.close();
  });

  it('validates the pinned host key up front, never connecting without one', () => {
    let caught: unknown;
    try {
      createSshExecutor({ type: 'ssh', host: 'h', username: 'root', privateKey: SECRET_KEY, hostKey: 'accept-anything' });
    } catch (error) {
      caught = error;
    }
    expect(isInstanceImagesError(caught, 'VALIDATION_FAILED')).toBe(true);
    expect((caught as Error).message).not.toContain('c2VjcmV0');
    expect(() =>
      createSshExecutor({ type: 'ssh', host: 'h', username: 'root', privateKey: SECRET_KEY, hostKey: PIN }, { maxConnections: 0 }),
    ).toThrow(/maxConnections/);
  });

  it('rejects an unparseable private key with VALIDATION_FAILED naming the field, without echoing it', async () => {
    const executor = createSshExecutor({ type: 'ssh', host: '127.0.0.1', port: 1, username: 'root', privateKey: SECRET_KEY, hostKey: PIN });
    let caught: unknown;
    try {
      await executor.run(['true']);
    } catch (error) {
      caught = error;
    }
    expect(isInstanceImagesError(caught, 'VALIDATION_FAILED')).toBe(true);
    expect((caught as { fields: Array<{ path: string }> }).fields[0]?.path).toBe('connection.privateKey');
    expect(JSON.stringify((caught as { toJSON(): unknown }).toJSON())).not.toContain('c2VjcmV0');
  });
});
