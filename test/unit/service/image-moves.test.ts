import { describe, expect, it } from 'vitest';
import { buildUsageReport, type Image } from '../../../src';
import { createMemoryRepositories } from '../../../src/memory';
import { admin, alice, bob, codeOf, setup, type Harness } from './setup';

const carol = { kind: 'customer', accountId: 'acct-carol' } as const;
const HOUR = 3_600_000;

async function aliceImage(h: Harness, name = 'golden'): Promise<Image> {
  const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name });
  await h.ii.idle();
  const ready = await h.ii.images.getImage(alice, image.id);
  expect(ready.status).toBe('available');
  return ready;
}

const deployAs = (h: Harness, actor: typeof bob, imageId: string, instanceId: string) =>
  h.ii.catalog.deployImage(actor, { imageId, instanceId, targetPath: `/disks/${instanceId}.qcow2` });

describe('sharing an image with another account', () => {
  it('share → accept → the recipient lists and deploys it; cannot delete or re-share it; revoke stops new deploys only', async () => {
    const h = await setup();
    const image = await aliceImage(h);
    const share = await h.ii.sharing.shareImage(alice, image.id, { accountId: 'acct-bob' });
    expect(share.status).toBe('pending');
    expect(share.id).toMatch(/^shr_[A-Za-z0-9_-]{22}$/);

    // pending: bob sees the invitation, not the image; cannot deploy yet
    expect((await h.ii.sharing.listIncomingShares(bob, { status: 'pending' })).items.map((i) => i.image.id)).toEqual([image.id]);
    expect((await h.ii.sharing.listIncomingShares(bob)).items).toEqual([]);
    expect(await codeOf(deployAs(h, bob, image.id, 'bob-1'))).toBe('NOT_FOUND');

    await h.ii.sharing.acceptShare(bob, share.id);
    expect((await h.ii.sharing.listIncomingShares(bob)).items.map((i) => i.image.id)).toEqual([image.id]);
    const picker = await h.ii.catalog.listDeployableImages(bob);
    expect(picker.sharedWithMe.map((i) => i.id)).toEqual([image.id]);
    // the owner's instance is not shown to the recipient
    expect(image.sourceInstanceId).toBe('web-1');
    expect(picker.sharedWithMe.map((i) => [i.sourceInstanceId, i.sourceInstanceName])).toEqual([[null, null]]);
    expect((await h.ii.sharing.listIncomingShares(bob)).items.map((i) => i.image.sourceInstanceName)).toEqual([null]);
    expect(picker.myImages).toEqual([]);
    const deployed = await deployAs(h, bob, image.id, 'bob-1');
    expect(deployed.task.accountId).toBe('acct-bob');
    await h.ii.idle();
    expect(h.world.files.has('hv-1:/disks/bob-1.qcow2')).toBe(true);

    // the recipient cannot delete, re-share, transfer or read the image as their own
    expect(await codeOf(h.ii.images.deleteImage(bob, image.id))).toBe('NOT_FOUND');
    expect(await codeOf(h.ii.sharing.shareImage(bob, image.id, { accountId: 'acct-carol' }))).toBe('NOT_FOUND');
    expect(await codeOf(h.ii.transfers.offerTransfer(bob, image.id, { accountId: 'acct-bob' }))).toBe('NOT_FOUND');
    expect(await codeOf(h.ii.sharing.listImageShares(bob, image.id))).toBe('NOT_FOUND');
    expect(await codeOf(h.ii.sharing.revokeShare(bob, share.id))).toBe('NOT_FOUND');
    // a third account sees nothing of it
    expect(await codeOf(h.ii.sharing.acceptShare(carol, share.id))).toBe('NOT_FOUND');
    expect((await h.ii.sharing.listIncomingShares(carol)).items).toEqual([]);

    // the owner keeps paying: the recipient's usage report is empty
    const report = await h.ii.settings.usageReport(bob, { from: new Date(0), to: new Date('2027-01-01') });
    expect(report.images.lines).toEqual([]);

    const revoked = await h.ii.sharing.revokeShare(alice, share.id);
    expect(revoked.status).toBe('revoked');
    expect(await codeOf(deployAs(h, bob, image.id, 'bob-1'))).toBe('NOT_FOUND');
    expect((await h.ii.catalog.listDeployableImages(bob)).sharedWithMe).toEqual([]);
    // the disk deployed before the revoke is untouched
    expect(h.world.files.has('hv-1:/disks/bob-1.qcow2')).toBe(true);
    expect(h.events.filter((e) => e.type === 'share.status-changed').map((e) => (e.payload as { to: string }).to)).toEqual([
      'accepted',
      'revoked',
    ]);
  });

  it('reject, duplicate shares, sharing with the owner, unavailable images and deletion end shares', async () => {
    const h = await setup();
    const image = await aliceImage(h);
    const share = await h.ii.sharing.shareImage(alice, image.id, { accountId: 'acct-bob' });
    expect(await codeOf(h.ii.sharing.shareImage(alice, image.id, { accountId: 'acct-bob' }))).toBe('CONFLICT');
    expect(await codeOf(h.ii.sharing.shareImage(alice, image.id, { accountId: 'acct-alice' }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(h.ii.sharing.shareImage(bob, image.id, { accountId: 'acct-carol' }))).toBe('NOT_FOUND');
    expect((await h.ii.sharing.rejectShare(bob, share.id)).status).toBe('rejected');
    expect(await codeOf(h.ii.sharing.acceptShare(bob, share.id))).toBe('INVALID_STATE');
    // after a rejection the owner may share again
    const again = await h.ii.sharing.shareImage(alice, image.id, { accountId: 'acct-bob' });
    await h.ii.sharing.acceptShare(bob, again.id);
    const toCarol = await h.ii.sharing.shareImage(alice, image.id, { accountId: 'acct-carol' });

    await h.ii.images.deleteImage(alice, image.id);
    expect((await h.ii.repositories.imageShares.get(again.id))?.status).toBe('revoked');
    expect((await h.ii.repositories.imageShares.get(toCarol.id))?.status).toBe('revoked');
    expect(await codeOf(h.ii.sharing.acceptShare(carol, toCarol.id))).toBe('INVALID_STATE');
    expect(await codeOf(deployAs(h, bob, image.id, 'bob-1'))).toBe('NOT_FOUND');
  });
});

describe('transferring an image to another account', () => {
  it('moves ownership and billing at the same instant, exact to the second in both usage reports', async () => {
    const h = await setup({ price: '0.10' });
    const t0 = h.clock.now;
    const image = await aliceImage(h);
    await h.ii.sharing.shareImage(alice, image.id, { accountId: 'acct-carol' });
    const offer = await h.ii.transfers.offerTransfer(alice, image.id, { accountId: 'acct-bob' });
    expect(offer.id).toMatch(/^xfr_/);
    expect(await codeOf(h.ii.transfers.offerTransfer(alice, image.id, { accountId: 'acct-carol' }))).toBe('CONFLICT');
    expect(await codeOf(h.ii.transfers.acceptTransfer(carol, offer.id))).toBe('NOT_FOUND');
    expect(await codeOf(h.ii.transfers.acceptTransfer(alice, offer.id))).toBe('NOT_FOUND');

    // 10 h 0 min 36 s after it became available: 10.01 hours
    h.clock.now = new Date(t0.getTime() + 10 * HOUR + 36_000);
    const at = h.clock.now;
    const { transfer, image: moved } = await h.ii.transfers.acceptTransfer(bob, offer.id);
    expect(transfer.status).toBe('accepted');
    expect(moved.accountId).toBe('acct-bob');
    // the giver's instance is forgotten: a retry could otherwise capture it into bob's image
    expect([moved.sourceInstanceId, moved.sourceInstanceName]).toEqual([null, null]);
    expect(await codeOf(h.ii.images.getImage(alice, image.id))).toBe('NOT_FOUND');
    expect((await h.ii.images.getImage(bob, image.id)).accountId).toBe('acct-bob');
    // its shares ended with the change of owner
    expect((await h.ii.repositories.imageShares.list({ imageId: image.id })).items.map((s) => s.status)).toEqual(['revoked']);

    const intervals = (await h.ii.repositories.usage.list({ imageId: image.id })).items;
    expect(intervals.map((i) => [i.accountId, i.from.getTime(), i.to?.getTime() ?? null])).toEqual([
      ['acct-alice', t0.getTime(), at.getTime()],
      ['acct-bob', at.getTime(), null],
    ]);
    // accepting again is idempotent and moves nothing twice
    await h.ii.transfers.acceptTransfer(bob, offer.id);
    expect((await h.ii.repositories.usage.list({ imageId: image.id })).items).toHaveLength(2);

    h.clock.now = new Date(at.getTime() + 5 * HOUR);
    const period = { from: t0, to: h.clock.now };
    const source = { usage: h.ii.repositories.usage, images: h.ii.repositories.images };
    const policy = { rounding: 'exact' as const };
    const ofAlice = await buildUsageReport(source, { accountId: 'acct-alice', period, currency: 'USD', policy });
    const ofBob = await buildUsageReport(source, { accountId: 'acct-bob', period, currency: 'USD', policy });
    expect(ofAlice.images.lines.map((l) => [l.imageId, l.accountId, l.billedHours])).toEqual([[image.id, 'acct-alice', '10.01']]);
    expect(ofBob.images.lines.map((l) => [l.imageId, l.accountId, l.billedHours])).toEqual([[image.id, 'acct-bob', '5']]);
    const changed = h.events.find((e) => e.type === 'image.owner-changed')?.payload as { at: Date; fromAccountId: string };
    expect(changed.at.getTime()).toBe(at.getTime());
    expect(changed.fromAccountId).toBe('acct-alice');
  });

  it("enforces the recipient's cap atomically; the offer stays pending", async () => {
    const h = await setup({ limit: 1 });
    const image = await aliceImage(h);
    // bob is at his cap of 1
    await h.ii.images.createImage(bob, { instanceId: 'bob-1', name: 'bobs' });
    await h.ii.idle();
    const offer = await h.ii.transfers.offerTransfer(alice, image.id, { accountId: 'acct-bob' });
    expect(await codeOf(h.ii.transfers.acceptTransfer(bob, offer.id))).toBe('IMAGE_LIMIT_REACHED');
    expect((await h.ii.transfers.getTransfer(bob, offer.id)).status).toBe('pending');
    expect((await h.ii.images.getImage(alice, image.id)).accountId).toBe('acct-alice');
    expect((await h.ii.repositories.usage.list({ imageId: image.id })).items.map((i) => i.accountId)).toEqual(['acct-alice']);
  });

  it("enforces the recipient's byte cap with the image's own bytes, naming the figures; the offer stays pending", async () => {
    const h = await setup();
    const image = await aliceImage(h);
    const bytes = image.sizeBytes ?? 0;
    expect(bytes).toBeGreaterThan(0);
    await h.ii.settings.setAccountLimit(admin, 'acct-bob', 10, bytes - 1);
    const offer = await h.ii.transfers.offerTransfer(alice, image.id, { accountId: 'acct-bob' });
    const error = await h.ii.transfers.acceptTransfer(bob, offer.id).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'IMAGE_LIMIT_REACHED',
      details: { limitBytes: bytes - 1, imageBytes: bytes, transferId: offer.id },
    });
    expect((error as Error).message).toMatch(/cap of \d+ bytes would be exceeded.*The offer stays pending/);
    expect((await h.ii.transfers.getTransfer(bob, offer.id)).status).toBe('pending');
    expect((await h.ii.images.getImage(alice, image.id)).accountId).toBe('acct-alice');
    // Room made: the same offer is accepted.
    await h.ii.settings.setAccountLimit(admin, 'acct-bob', 10, bytes);
    expect((await h.ii.transfers.acceptTransfer(bob, offer.id)).image.accountId).toBe('acct-bob');
  });

  it('concurrent accepts of offers to one account leave exactly its room', async () => {
    const h = await setup({ limit: 3 });
    const offers = [];
    for (const name of ['a', 'b', 'c']) {
      const image = await aliceImage(h, name);
      offers.push(await h.ii.transfers.offerTransfer(alice, image.id, { accountId: 'acct-bob' }));
    }
    await h.ii.settings.setAccountLimit(admin, 'acct-bob', 2);
    const results = await Promise.allSettled(offers.map((o) => h.ii.transfers.acceptTransfer(bob, o.id)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    expect(await h.ii.repositories.images.countActive('acct-bob')).toBe(2);
  });

  it('expired, rejected and cancelled offers cannot be accepted', async () => {
    const h = await setup();
    const image = await aliceImage(h);
    const offer = await h.ii.transfers.offerTransfer(alice, image.id, { accountId: 'acct-bob', expiresInSeconds: 60 });
    h.clock.now = new Date(h.clock.now.getTime() + 60_000);
    expect((await h.ii.transfers.listTransfers(bob)).items.map((t) => t.status)).toEqual(['expired']);
    expect(await codeOf(h.ii.transfers.acceptTransfer(bob, offer.id))).toBe('INVALID_STATE');
    expect((await h.ii.transfers.getTransfer(alice, offer.id)).status).toBe('expired');
    const second = await h.ii.transfers.offerTransfer(alice, image.id, { accountId: 'acct-bob' });
    expect((await h.ii.transfers.rejectTransfer(bob, second.id)).status).toBe('rejected');
    const third = await h.ii.transfers.offerTransfer(alice, image.id, { accountId: 'acct-bob' });
    expect(await codeOf(h.ii.transfers.cancelTransfer(bob, third.id))).toBe('NOT_FOUND');
    expect((await h.ii.transfers.cancelTransfer(alice, third.id)).status).toBe('cancelled');
    expect(await codeOf(h.ii.transfers.acceptTransfer(bob, third.id))).toBe('INVALID_STATE');
    expect((await h.ii.images.getImage(alice, image.id)).accountId).toBe('acct-alice');
    expect((await h.ii.transfers.listTransfers(bob)).items.map((t) => t.status).sort()).toEqual(['cancelled', 'expired', 'rejected']);
  });
});

describe('copying an image to another storage', () => {
  it('streams the bytes, verifies the checksum, and bills the copy as its own line', async () => {
    const h = await setup();
    const image = await aliceImage(h);
    const local = await h.ii.storages.createStorage(admin, { name: 'local', driver: 'fake-local', config: { root: 'images' } });
    await h.ii.storages.bindHypervisor(admin, local.id, 'hv-2');
    expect(await codeOf(h.ii.copies.copyImage(alice, image.id, { storageId: local.id, hypervisorId: 'hv-2' }))).toBe('FORBIDDEN');
    expect(await codeOf(h.ii.copies.copyImage(admin, image.id, { storageId: local.id }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(h.ii.copies.copyImage(admin, image.id, { storageId: h.storageId }))).toBe('VALIDATION_FAILED');

    const { image: copy, task } = await h.ii.copies.copyImage(admin, image.id, { storageId: local.id, hypervisorId: 'hv-2' });
    expect(copy.status).toBe('creating');
    expect(task.type).toBe('copy');
    await h.ii.idle();
    const ready = await h.ii.images.getImage(alice, copy.id);
    expect(ready.status).toBe('available');
    expect(ready.sha256).toBe(image.sha256);
    expect(ready.sizeBytes).toBe(image.sizeBytes);
    expect(ready.hypervisorId).toBe('hv-2');
    const finished = await h.ii.images.getTask(alice, task.id);
    expect(finished.status).toBe('completed');
    expect(finished.progress.bytesDone).toBe(image.sizeBytes);
    const open = (await h.ii.repositories.usage.list({ openOnly: true, accountId: 'acct-alice' })).items.map((i) => i.imageId);
    expect(open.sort()).toEqual([image.id, copy.id].sort());

    // the copy deploys on the hypervisor that holds it
    h.world.addInstance('web-2', 'acct-alice', { hypervisorId: 'hv-2' });
    await h.ii.catalog.deployImage(alice, { imageId: copy.id, instanceId: 'web-2', targetPath: '/disks/web-2.qcow2' });
    await h.ii.idle();
    expect(h.world.files.has('hv-2:/disks/web-2.qcow2')).toBe(true);
  });

  it('a copy whose bytes do not match the checksum fails and leaves no file', async () => {
    const h = await setup({ imageCopies: { allowCustomers: true } });
    const image = await aliceImage(h);
    const other = await h.ii.storages.createStorage(admin, { name: 's3-b', driver: 'fake-s3', config: { root: 'other' } });
    await h.ii.storages.bindHypervisor(admin, other.id, 'hv-1');
    // the source file changed behind the record's back
    const key = [...h.world.files.keys()].find((k) => k.endsWith(image.fileKey)) as string;
    h.world.files.set(key, { bytes: Buffer.from('tampered'), modifiedAt: new Date() });
    const { image: copy } = await h.ii.copies.copyImage(alice, image.id, { storageId: other.id });
    await h.ii.idle();
    const failed = await h.ii.images.getImage(alice, copy.id);
    expect(failed.status).toBe('error');
    expect(failed.statusReason?.code).toMatch(/CHECKSUM_MISMATCH|VALIDATION_FAILED/);
    expect([...h.world.files.keys()].some((k) => k.startsWith('other:'))).toBe(false);
    expect((await h.ii.repositories.usage.list({ imageId: copy.id })).items).toEqual([]);
  });

  it('a customer copies to a location: the SDK picks a storage there, never the one the image is on', async () => {
    const h = await setup({ imageCopies: { allowCustomers: true } });
    const image = await aliceImage(h);
    // the image's own location has no other storage
    expect(await codeOf(h.ii.copies.copyImage(alice, image.id, { locationId: 'loc-1' }))).toBe('NO_IMAGE_STORAGE');
    // a second location with its own storage, on a hypervisor of its own
    h.world.addHypervisor('hv-3', 'loc-2');
    const remote = await h.ii.storages.createStorage(admin, { name: 'loc-2 local', driver: 'fake-local', config: { root: 'loc2' } });
    await h.ii.storages.bindHypervisor(admin, remote.id, 'hv-3');
    expect(await codeOf(h.ii.copies.copyImage(alice, image.id, { locationId: 'loc-2' }))).toBe('FEATURE_DISABLED');
    await h.ii.settings.setLocationSettings(admin, 'loc-2', { imagesEnabled: true, pricePerGbMonth: '0.05' });
    // one of storageId and locationId, not both, not neither
    expect(await codeOf(h.ii.copies.copyImage(alice, image.id, { locationId: 'loc-2', storageId: remote.id }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(h.ii.copies.copyImage(alice, image.id, {}))).toBe('VALIDATION_FAILED');

    const { image: copy } = await h.ii.copies.copyImage(alice, image.id, { locationId: 'loc-2' });
    expect(copy).toMatchObject({ locationId: 'loc-2', storageId: remote.id, hypervisorId: 'hv-3', status: 'creating' });
    await h.ii.idle();
    expect((await h.ii.images.getImage(alice, copy.id)).status).toBe('available');
  });

  it("counts against the account's cap", async () => {
    const h = await setup({ limit: 1 });
    const image = await aliceImage(h);
    const other = await h.ii.storages.createStorage(admin, { name: 's3-b', driver: 'fake-s3', config: { root: 'other' } });
    await h.ii.storages.bindHypervisor(admin, other.id, 'hv-1');
    expect(await codeOf(h.ii.copies.copyImage(admin, image.id, { storageId: other.id }))).toBe('IMAGE_LIMIT_REACHED');
  });
});

describe('a delete racing the acceptance of a transfer', () => {
  it('exactly one wins: an acceptance that lands after the owner’s delete read leaves the recipient’s image untouched', async () => {
    const repositories = createMemoryRepositories();
    const h = await setup({ repositories });
    const image = await aliceImage(h);
    const transfer = await h.ii.transfers.offerTransfer(alice, image.id, { accountId: 'acct-bob' });
    // The recipient accepts just after the owner's delete has read the image (still alice's).
    const get = repositories.images.get.bind(repositories.images);
    let raced = false;
    repositories.images.get = async (id, ...rest) => {
      const read = await get(id, ...rest);
      if (!raced && id === image.id) {
        raced = true;
        await h.ii.transfers.acceptTransfer(bob, transfer.id);
      }
      return read;
    };
    expect(await codeOf(h.ii.images.deleteImage(alice, image.id))).toBe('NOT_FOUND');
    await h.ii.idle();
    const after = await h.ii.images.getImage(bob, image.id);
    expect([after.status, after.accountId]).toEqual(['available', 'acct-bob']);
    expect((await h.ii.transfers.listTransfers(bob, { status: 'accepted' })).items.map((t) => t.id)).toEqual([transfer.id]);
  });

  it('exactly one wins: a delete that ends the offer first leaves nothing to accept', async () => {
    const repositories = createMemoryRepositories();
    const h = await setup({ repositories });
    const image = await aliceImage(h);
    const transfer = await h.ii.transfers.offerTransfer(alice, image.id, { accountId: 'acct-bob' });
    await h.ii.images.deleteImage(alice, image.id);
    expect(await codeOf(h.ii.transfers.acceptTransfer(bob, transfer.id))).toBe('INVALID_STATE');
    await h.ii.idle();
    const after = await repositories.images.get(image.id);
    expect([after?.status, after?.accountId]).toEqual(['deleted', 'acct-alice']);
  });
});
