import { describe, expect, it } from 'vitest';
import { InstanceImagesError } from '../../../src/errors';
import { admin, alice, bob, deployAndWait, setup } from './setup';

const GIB = 2 ** 30;

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => null,
    (error: unknown) => (error instanceof InstanceImagesError ? error.code : String(error)),
  );

describe('protected images', () => {
  it('a protected image refuses deletion (IMAGE_PROTECTED, saying how to proceed) until unprotected', async () => {
    const h = await setup();
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'keep me' });
    await h.ii.idle();
    const protectedImage = await h.ii.metadata.setProtected(alice, image.id, true);
    expect(protectedImage.protected).toBe(true);
    const error = await h.ii.images.deleteImage(alice, image.id).catch((e: unknown) => e as InstanceImagesError);
    expect(error).toMatchObject({ code: 'IMAGE_PROTECTED', message: expect.stringMatching(/unprotect it first/) });
    // the operator cannot delete it either, but may lift the protection
    expect(await codeOf(h.ii.images.deleteImage(admin, image.id))).toBe('IMAGE_PROTECTED');
    expect((await h.ii.images.getImage(alice, image.id)).status).toBe('available');
    await h.ii.metadata.setProtected(admin, image.id, false);
    expect((await h.ii.images.deleteImage(alice, image.id)).image.status).toBe('deleting');
    const updates = h.events.filter((e) => e.type === 'image.updated').map((e) => (e.payload as { fields: string[] }).fields);
    expect(updates).toEqual([['protected'], ['protected']]);
  });

  it("another account's image is NOT_FOUND for protect and update", async () => {
    const h = await setup();
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'mine' });
    await h.ii.idle();
    expect(await codeOf(h.ii.metadata.setProtected(bob, image.id, true))).toBe('NOT_FOUND');
    expect(await codeOf(h.ii.metadata.updateImage(bob, image.id, { firmware: 'uefi' }))).toBe('NOT_FOUND');
  });

  it('closing the account deletes protected images too (closure overrides protection)', async () => {
    const h = await setup();
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'protected' });
    await h.ii.idle();
    await h.ii.metadata.setProtected(alice, image.id, true);
    await h.ii.accounts.closeAccount(admin, 'acct-alice');
    await h.ii.idle();
    expect((await h.ii.images.getImage(admin, image.id).catch(() => null))?.status ?? 'deleted').toBe('deleted');
  });
});

describe('byte caps', () => {
  it('the account byte cap counts the source disk virtual size at creation and refuses past it', async () => {
    const h = await setup({ limit: null });
    h.world.addInstance('big-1', 'acct-alice', { virtualSize: 3 * GIB });
    await h.ii.settings.setLocationSettings(admin, 'loc-1', { defaultImageBytesLimit: 5 * GIB });
    await h.ii.images.createImage(alice, { instanceId: 'big-1', name: 'one' });
    const error = await h.ii.images
      .createImage(alice, { instanceId: 'big-1', name: 'two' })
      .catch((e: unknown) => e as InstanceImagesError);
    expect(error).toMatchObject({ code: 'IMAGE_LIMIT_REACHED', details: { limitBytes: 5 * GIB, imageBytes: 3 * GIB } });
    // the per-account override beats the location default
    await h.ii.settings.setAccountLimit(admin, 'acct-alice', 100, 10 * GIB);
    await h.ii.images.createImage(alice, { instanceId: 'big-1', name: 'two' });
    await h.ii.idle();
  });
});

describe('capability metadata', () => {
  it('capture records firmware, architecture and minimum disk from the domain; the owner edits them', async () => {
    const h = await setup();
    h.world.addInstance('efi-1', 'acct-alice', { virtualSize: 2 * GIB });
    h.world.domains.get('dom-efi-1')!.boot = { firmware: 'uefi', architecture: 'aarch64' };
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'efi-1', name: 'arm' });
    expect(image).toMatchObject({ firmware: 'uefi', architecture: 'aarch64', minDiskBytes: 2 * GIB });
    await h.ii.idle();
    const edited = await h.ii.metadata.updateImage(alice, image.id, { cloudInit: true, osType: 'linux', minDiskBytes: 4 * GIB });
    expect(edited).toMatchObject({ cloudInit: true, osType: 'linux', minDiskBytes: 4 * GIB, firmware: 'uefi' });
    expect(await codeOf(h.ii.metadata.updateImage(alice, image.id, { minDiskBytes: GIB }))).toBe('VALIDATION_FAILED');
  });

  it('capture records OS type and cloud-init from the host instance, else from the domain, else unknown', async () => {
    const h = await setup();
    h.world.addInstance('win-1', 'acct-alice');
    h.world.domains.get('dom-win-1')!.guest = { osType: 'windows', cloudInit: null };
    const fromDomain = (await h.ii.images.createImage(alice, { instanceId: 'win-1', name: 'win' })).image;
    expect([fromDomain.osType, fromDomain.cloudInit]).toEqual(['windows', false]);
    // The panel's own knowledge of the instance wins over the domain's definition.
    const known = h.world.addInstance('ci-1', 'acct-alice');
    Object.assign(known, { osType: 'linux', cloudInit: true });
    h.world.domains.get('dom-ci-1')!.guest = { osType: 'bsd', cloudInit: null };
    const fromHost = (await h.ii.images.createImage(alice, { instanceId: 'ci-1', name: 'ci' })).image;
    expect([fromHost.osType, fromHost.cloudInit]).toEqual(['linux', true]);
    // Nothing known: unknown until the owner says.
    const plain = (await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'plain' })).image;
    expect([plain.osType, plain.cloudInit]).toEqual([null, false]);
    await h.ii.idle();
    expect((await h.ii.metadata.updateImage(alice, plain.id, { osType: 'linux', cloudInit: true })).osType).toBe('linux');
    // A host directory answering an OS type we do not know is refused, naming the field.
    Object.assign(known, { osType: 'plan9' });
    expect(await codeOf(h.ii.images.createImage(alice, { instanceId: 'ci-1', name: 'bad' }))).toBe('HOST_DATA_INVALID');
  });

  it('deploy refuses a disk below the minimum and a firmware mismatch (IMAGE_INCOMPATIBLE); the OS picker hides them', async () => {
    const h = await setup();
    h.world.addInstance('efi-1', 'acct-alice', { virtualSize: 2 * GIB });
    h.world.domains.get('dom-efi-1')!.boot = { firmware: 'uefi', architecture: 'x86_64' };
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'efi-1', name: 'uefi' });
    await h.ii.idle();
    await h.ii.metadata.updateImage(alice, image.id, { minDiskBytes: 4 * GIB });
    h.world.addInstance('new-1', 'acct-alice');
    const base = { imageId: image.id, instanceId: 'new-1', targetPath: '/disks/new-1.qcow2' };
    const small = await h.ii.catalog.deployImage(alice, { ...base, sizeBytes: 3 * GIB }).catch((e: unknown) => e as InstanceImagesError);
    expect(small).toMatchObject({ code: 'IMAGE_INCOMPATIBLE', details: { field: 'diskBytes' } });
    // without a size the disk would be the image's own 2 GiB: below its minimum too
    expect(await codeOf(h.ii.catalog.deployImage(alice, base))).toBe('IMAGE_INCOMPATIBLE');
    const bios = await h.ii.catalog
      .deployImage(alice, { ...base, sizeBytes: 4 * GIB, firmware: 'bios' })
      .catch((e: unknown) => e as InstanceImagesError);
    expect(bios).toMatchObject({ code: 'IMAGE_INCOMPATIBLE', details: { field: 'firmware' }, message: expect.stringMatching(/UEFI/) });
    await deployAndWait(h.ii, alice, { ...base, sizeBytes: 4 * GIB, firmware: 'uefi' });

    const names = async (plan: object) =>
      (await h.ii.catalog.listDeployableImages(alice, { plan })).myImages.map((i) => i.name).filter((n) => n === 'uefi');
    expect(await names({ diskBytes: 4 * GIB, firmware: 'uefi' })).toEqual(['uefi']);
    expect(await names({ diskBytes: 3 * GIB })).toEqual([]);
    expect(await names({ firmware: 'bios' })).toEqual([]);
    expect(await names({ architecture: 'aarch64' })).toEqual([]);
  });
});
