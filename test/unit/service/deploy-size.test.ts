import { describe, expect, it } from 'vitest';
import { InstanceImagesError } from '../../../src/errors';
import { DeployInputSchema, MAX_DEPLOY_DISK_BYTES } from '../../../src/services/catalog';
import { alice, deployAndWait, setup } from './setup';

const TIB = 2 ** 40;

async function deployError(sizeBytes: number, deploy?: { maxDiskBytes: number }): Promise<InstanceImagesError> {
  const h = await setup(deploy ? { deploy } : {});
  const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'mine' });
  await h.ii.idle();
  h.world.addInstance('new-1', 'acct-alice');
  const error = await deployAndWait(h.ii, alice, {
    imageId: image.id,
    instanceId: 'new-1',
    targetPath: '/disks/new-1.qcow2',
    sizeBytes,
  }).then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(InstanceImagesError);
  // nothing was materialized and no deploy task was started for a refused size
  expect(h.world.files.has('hv-1:/disks/new-1.qcow2')).toBe(false);
  expect((await h.ii.images.listTasks(alice, { type: 'deploy' })).items).toEqual([]);
  return error as InstanceImagesError;
}

describe('deploy: the requested disk size is bounded', () => {
  it('the documented maximum is 64 TiB', () => {
    expect(MAX_DEPLOY_DISK_BYTES).toBe(64 * TIB);
  });

  it('a size above the maximum is VALIDATION_FAILED naming sizeBytes', async () => {
    const error = await deployError(MAX_DEPLOY_DISK_BYTES + 1);
    expect(error.code).toBe('VALIDATION_FAILED');
    expect([...new Set(error.fields.map((f) => f.path))]).toEqual(['sizeBytes']);
    expect(error.message).toContain('sizeBytes');
  });

  it('a size beyond the safe integer range is VALIDATION_FAILED naming sizeBytes', async () => {
    for (const size of [2 ** 53, 1e300, Number.POSITIVE_INFINITY]) {
      const error = await deployError(size);
      expect(error.code).toBe('VALIDATION_FAILED');
      expect([...new Set(error.fields.map((f) => f.path))]).toEqual(['sizeBytes']);
    }
  });

  it('the maximum itself is accepted', async () => {
    const h = await setup();
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'mine' });
    await h.ii.idle();
    h.world.addInstance('new-1', 'acct-alice');
    const deployed = await deployAndWait(h.ii, alice, {
      imageId: image.id,
      instanceId: 'new-1',
      targetPath: '/disks/new-1.qcow2',
      sizeBytes: MAX_DEPLOY_DISK_BYTES,
    });
    expect(deployed.result.virtualSizeBytes).toBe(MAX_DEPLOY_DISK_BYTES);
  });

  it('the message says the limit in bytes and in binary units', async () => {
    const error = await deployError(MAX_DEPLOY_DISK_BYTES + 1);
    expect(error.message).toContain(`${MAX_DEPLOY_DISK_BYTES} bytes (64 TiB)`);
  });
});

describe('deploy: the operator sets the maximum disk size', () => {
  const GIB = 2 ** 30;

  it('a size above the configured maximum is VALIDATION_FAILED naming sizeBytes; the maximum itself deploys', async () => {
    const error = await deployError(100 * GIB + 1, { maxDiskBytes: 100 * GIB });
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.fields.map((f) => f.path)).toEqual(['sizeBytes']);
    expect(error.message).toContain(`${100 * GIB} bytes (100 GiB)`);

    const h = await setup({ deploy: { maxDiskBytes: 100 * GIB } });
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'mine' });
    await h.ii.idle();
    h.world.addInstance('new-1', 'acct-alice');
    const deployed = await deployAndWait(h.ii, alice, {
      imageId: image.id,
      instanceId: 'new-1',
      targetPath: '/disks/new-1.qcow2',
      sizeBytes: 100 * GIB,
    });
    expect(deployed.result.virtualSizeBytes).toBe(100 * GIB);
  });

  it('an operator may allow more than the default', async () => {
    const h = await setup({ deploy: { maxDiskBytes: 2 * MAX_DEPLOY_DISK_BYTES } });
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'mine' });
    await h.ii.idle();
    h.world.addInstance('new-1', 'acct-alice');
    const deployed = await deployAndWait(h.ii, alice, {
      imageId: image.id,
      instanceId: 'new-1',
      targetPath: '/disks/new-1.qcow2',
      sizeBytes: MAX_DEPLOY_DISK_BYTES + 1,
    });
    expect(deployed.result.virtualSizeBytes).toBe(MAX_DEPLOY_DISK_BYTES + 1);
  });

  it('the input schema itself only requires a positive safe integer', () => {
    const input = { imageId: 'i', instanceId: 'n', targetPath: '/disks/a.qcow2' };
    expect(DeployInputSchema.safeParse({ ...input, sizeBytes: MAX_DEPLOY_DISK_BYTES + 1 }).success).toBe(true);
    for (const bad of [0, -1, 1.5, 2 ** 53]) expect(DeployInputSchema.safeParse({ ...input, sizeBytes: bad }).success).toBe(false);
  });

  it('a maximum that is not a whole number of bytes of at least 1 MiB is refused, naming deploy.maxDiskBytes', async () => {
    for (const bad of [0, 1024, GIB + 0.5, Number.NaN, 2 ** 53]) {
      const error = await setup({ deploy: { maxDiskBytes: bad } }).then(
        () => null,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(InstanceImagesError);
      expect((error as InstanceImagesError).code).toBe('VALIDATION_FAILED');
      expect((error as InstanceImagesError).fields.map((f) => f.path)).toEqual(['deploy.maxDiskBytes']);
    }
  });
});
