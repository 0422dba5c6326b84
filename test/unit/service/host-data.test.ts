/**
 * The core checks what the host directory returns where it reads it: a host bug (an empty or NUL
 * domain name, a malformed connection) fails at once with HOST_DATA_INVALID naming the host's
 * field, before any hypervisor command; customers see only the code.
 */
import { describe, expect, it } from 'vitest';
import { InstanceImagesError } from '../../../src/errors';
import { checkedHostDirectory } from '../../../src/util/host-data';
import { ADMIN, ALICE, useExpressHarness } from '../../support/express-harness';

const harness = useExpressHarness();

describe('host-supplied data', () => {
  it('an instance with a NUL or empty domain name is HOST_DATA_INVALID naming domainName, before the driver runs', async () => {
    const t = await harness();
    for (const domainName of ['\0', '', 'dom\nname', 'x'.repeat(201)]) {
      t.world.instances.set('web-1', { ...t.world.instances.get('web-1')!, domainName });
      const error = await t.ii.images.createImage(ALICE, { instanceId: 'web-1', name: 'x' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InstanceImagesError);
      expect(error).toMatchObject({ code: 'HOST_DATA_INVALID', fields: [{ path: 'domainName' }] });
      expect((error as Error).message).toContain('getInstance("web-1")');
      const customer = await t.call('POST', '/instances/web-1/iso', { json: { isoId: 'i' } });
      expect([customer.status, customer.json.code, customer.json.detail]).toEqual([
        500,
        'HOST_DATA_INVALID',
        'The host panel returned invalid data; the operator must fix it',
      ]);
      const admin = await t.call('DELETE', '/instances/web-1/iso', { actor: ADMIN });
      expect([admin.status, admin.json.code, admin.json.fields.map((f: { path: string }) => f.path)]).toEqual([
        500,
        'HOST_DATA_INVALID',
        ['domainName'],
      ]);
    }
    expect(t.world.captures).toBe(0);
    expect(t.world.mounted.size).toBe(0);
  });

  it('an instance record missing fields, or for another id, names the field', async () => {
    const t = await harness();
    t.world.instances.set('web-1', { id: 'web-1', name: 'vm', accountId: 'acct-alice', locationId: 'loc-1' } as never);
    await expect(t.ii.images.createImage(ALICE, { instanceId: 'web-1', name: 'x' })).rejects.toMatchObject({
      code: 'HOST_DATA_INVALID',
      fields: [{ path: 'hypervisorId' }, { path: 'domainName' }],
    });
    t.world.instances.set('web-1', { ...t.world.instances.get('bob-1')! });
    await expect(t.ii.images.createImage(ALICE, { instanceId: 'web-1', name: 'x' })).rejects.toMatchObject({
      code: 'HOST_DATA_INVALID',
      fields: [{ path: 'id' }],
    });
  });

  it('a hypervisor with a malformed connection names the field and never echoes a secret', async () => {
    const host = checkedHostDirectory({
      getInstance: async () => null,
      getHypervisor: async (id) => ({
        id,
        name: 'hv',
        locationId: 'loc',
        connection: { type: 'ssh', host: '', username: 'root', privateKey: 'PRIVATE-KEY-VALUE', hostKey: 'SHA256:x', port: 70000 },
      }),
      listHypervisors: async () => [{ id: 'hv', name: 'hv', locationId: '', connection: { type: 'local' } }],
    });
    const error = await host.getHypervisor('hv').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'HOST_DATA_INVALID' });
    expect((error as InstanceImagesError).fields.map((f) => f.path).sort()).toEqual(['connection.host', 'connection.port']);
    expect(JSON.stringify(error) + (error as Error).message).not.toContain('PRIVATE-KEY-VALUE');
    await expect(host.listHypervisors!()).rejects.toMatchObject({ code: 'HOST_DATA_INVALID', fields: [{ path: 'locationId' }] });
    expect(await host.getInstance('gone')).toBeNull();
  });
});
