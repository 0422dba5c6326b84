import { existsSync, lstatSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import type { Executor } from '../../../src/ports/executor';
import { createTestGuest, uniqueSuffix, type TestGuest } from '../../support/guests';
import { sshTarget } from '../exec/ssh-target';
import { freshScratchDir, imagesIdentical, leftovers, libvirtSkipReason, makeDriver, recordGuest } from './setup';

const skip = libvirtSkipReason();
// libvirt refuses '/' in a name, so the injected commands create a relative file: look for it
// wherever a shell could have run (the test's cwd, root's home, /, the scratch dirs).
const canaryName = `ii-canary-${uniqueSuffix()}`;
const canaryPlaces = () => [process.cwd(), '/root', '/', '/tmp'].map((dir) => join(dir, canaryName));
const canaryFired = () => canaryPlaces().some((path) => existsSync(path));

describe.skipIf(skip !== null)(`libvirt driver: hostile domain names and paths${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let guest: TestGuest;
  let scratch: string;
  let outDir: string;
  const executors: Array<[string, () => Promise<Executor>]> = [
    ['local', async () => createLocalExecutor()],
    [
      'ssh',
      async () => {
        const target = await sshTarget();
        if ('skip' in target) throw new Error(target.skip);
        return createSshExecutor(target.connection);
      },
    ],
  ];

  beforeAll(() => {
    // Shell metacharacters of every kind; libvirt accepts all of them in a name except '/'.
    guest = createTestGuest({ name: `ii-test-$(touch ${canaryName})-;'x\`touch ${canaryName}\`|&"<>*?\\` });
    scratch = freshScratchDir('hostile');
    outDir = freshScratchDir("hostile-out $(touch x);'");
  });
  afterAll(() => {
    guest?.remove();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    if (outDir) rmSync(outDir, { recursive: true, force: true });
    for (const path of canaryPlaces()) rmSync(path, { force: true });
  });

  for (const [label, makeExecutor] of executors) {
    it(`inspects, captures and recovers through the ${label} executor; nothing is executed`, async () => {
      const executor = await makeExecutor();
      try {
        const driver = makeDriver(scratch, {}, executor);
        const info = await driver.inspect(guest.name);
        expect(info.name).toBe(guest.name);
        expect(info.primaryDisk.path).toBe(guest.primaryPath);
        const before = recordGuest(guest.name);
        const out = `${outDir}/image $(touch ${canaryName}) ;'.qcow2`;
        for (const method of ['pull-backup', 'push-backup', 'snapshot-commit'] as const) {
          const result = await makeDriver(scratch, { method }, executor).capture({
            domainName: guest.name,
            output: { kind: 'path', path: out },
          });
          expect(result.method).toBe(method);
          expect(imagesIdentical(guest.primaryPath, out)).toBe(true);
          await driver.removeFile(out);
          expect(existsSync(out)).toBe(false);
        }
        expect(await driver.recover(guest.name)).toEqual([]);
        expect(await driver.freeSpace(outDir)).toBeGreaterThan(0);
        before.expectUntouched();
        expect(leftovers(scratch)).toEqual([]);
        expect(canaryFired()).toBe(false);
      } finally {
        await executor.close();
      }
    });
  }

  it('a symbolic link planted as the part file is replaced, never written through', async () => {
    // Someone with write access to a shared storage plants `<image>.part` -> a file of the host:
    // the root-run qemu-img must not overwrite that file.
    const victim = join(outDir, 'victim.txt');
    writeFileSync(victim, 'precious');
    const out = `${outDir}/planted.qcow2`;
    symlinkSync(victim, `${out}.part`);
    const result = await makeDriver(scratch).capture({ domainName: guest.name, output: { kind: 'path', path: out } });
    expect(result.format).toBe('qcow2');
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(lstatSync(out).isSymbolicLink()).toBe(false);
    expect(imagesIdentical(guest.primaryPath, out)).toBe(true);
    expect(existsSync(`${out}.part`)).toBe(false);
  });
});
