import { describe, expect, it } from 'vitest';
import { InstanceImagesError } from '../../../src/errors';
import { DeployInputSchema, MAX_DEPLOY_DISK_BYTES } from '../../../src/services/catalog';
import { alice, setup } from './setup';

const TIB = 2 ** 40;

async function deployError(sizeBytes: number): Promise<InstanceImagesError> {
  const h = await setup();
  const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'mine' });
  await h.ii.idle();
  h.world.addInstance('new-1', 'acct-alice');
  const error = await h.ii.catalog.deployImage(alice, { imageId: image.id, instanceId: 'new-1', targetPath: '/disks/new-1.qcow2', sizeBytes }).then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(InstanceImagesError);
  // nothing was materialised and no deploy task was started for a refused size
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

  it('the maximum itself is accepted, and the schema documents the bound', async () => {
    expect(DeployInputSchema.safeParse({ imageId: 'i', instanceId: 'n', targetPath: '/disks/a.qcow2', sizeBytes: MAX_DEPLOY_DISK_BYTES }).success).toBe(true);
    expect(DeployInputSchema.safeParse({ imageId: 'i', instanceId: 'n', targetPath: '/disks/a.qcow2', sizeBytes: MAX_DEPLOY_DISK_BYTES + 1 }).success).toBe(false);
    const h = await setup();
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'mine' });
    await h.ii.idle();
    h.world.addInstance('new-1', 'acct-alice');
    const deployed = await h.ii.catalog.deployImage(alice, { imageId: image.id, instanceId: 'new-1', targetPath: '/disks/new-1.qcow2', sizeBytes: MAX_DEPLOY_DISK_BYTES });
    expect(deployed.result.virtualSizeBytes).toBe(MAX_DEPLOY_DISK_BYTES);
  });
});
