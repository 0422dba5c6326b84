/**
 * Symbolic links inside a path storage's root never lead outside it: the local driver treats a key
 * that is a symlink, or that passes through a symlinked directory, as absent (get NOT_FOUND, stat
 * null, list skips it, delete does nothing) and refuses to write through one (STORAGE_UNAVAILABLE).
 * Real symlinks on this machine, through the local executor and through the real sshd.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import { localStorageDriver } from '../../../drivers/storage/local';
import type { Executor } from '../../../src/ports/executor';
import type { StorageDriver } from '../../../src/ports/storage-driver';
import { sshTarget } from '../exec/ssh-target';
import { codeOf } from '../../support/errors';

const target = await sshTarget();

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

const executors: { name: string; skip: string | null; create: () => Executor }[] = [
  { name: 'local executor', skip: null, create: () => createLocalExecutor() },
  {
    name: 'real sshd',
    skip: 'skip' in target ? target.skip : null,
    create: () => {
      if ('skip' in target) throw new Error(target.skip);
      return createSshExecutor(target.connection);
    },
  },
];

for (const via of executors) {
  describe.skipIf(via.skip !== null)(
    `path storage symlinks stay outside the storage (${via.name})${via.skip ? ` (skipped: ${via.skip})` : ''}`,
    () => {
      let base: string;
      let root: string;
      let outside: string;
      let executor: Executor;
      let storage: StorageDriver;
      const SECRET = 'outside secret\n';

      beforeEach(() => {
        base = mkdtempSync('/var/tmp/ii-sec-symlinks-');
        root = join(base, 'root');
        outside = join(base, 'outside');
        mkdirSync(join(outside, 'dir'), { recursive: true });
        writeFileSync(join(outside, 'secret.txt'), SECRET);
        writeFileSync(join(outside, 'dir', 'victim.qcow2'), 'victim');
        writeFileSync(join(outside, 'dir', '.victim.qcow2.lzx0a1b2-0123abcd.part'), 'someone else’s temp file');
        mkdirSync(join(root, 'images', 'acct'), { recursive: true });
        writeFileSync(join(root, 'images', 'acct', 'own.qcow2'), 'own bytes');
        writeFileSync(join(root, 'real.qcow2'), 'real');
        mkdirSync(join(root, 'odd dir *'), { recursive: true });
        writeFileSync(join(root, 'odd dir *', "we'ird $name.qcow2"), 'odd');
        symlinkSync(join(outside, 'secret.txt'), join(root, 'images', 'link.qcow2'));
        symlinkSync(join(outside, 'dir'), join(root, 'images', 'linkdir'));
        // a symlink to a file inside the root is still a symlink: not part of the storage
        symlinkSync(join(root, 'real.qcow2'), join(root, 'images', 'inside-link.qcow2'));
        executor = via.create();
        storage = localStorageDriver.create({ path: root }, { executor });
      });

      afterEach(async () => {
        await executor.close();
        rmSync(base, { recursive: true, force: true });
      });

      it('get of a symlinked key, or of a key under a symlinked directory, is NOT_FOUND (whole and ranged)', async () => {
        for (const key of ['images/link.qcow2', 'images/linkdir/victim.qcow2', 'images/inside-link.qcow2']) {
          expect(await codeOf(storage.get(key))).toBe('NOT_FOUND');
          expect(await codeOf(storage.get(key, { range: { start: 0, end: 3 } }))).toBe('NOT_FOUND');
        }
        expect(await readAll(await storage.get('images/acct/own.qcow2'))).toBe('own bytes');
        // names with spaces, quotes, globs and dollars pass the symlink check as plain names
        expect(await readAll(await storage.get("odd dir */we'ird $name.qcow2"))).toBe('odd');
        expect((await storage.stat("odd dir */we'ird $name.qcow2"))?.size).toBe(3);
        expect(await readAll(await storage.get('images/acct/own.qcow2', { range: { start: 4, end: 8 } }))).toBe('bytes');
      });

      it('stat of them is null; list and listIncomplete skip them', async () => {
        for (const key of ['images/link.qcow2', 'images/linkdir/victim.qcow2', 'images/inside-link.qcow2'])
          expect(await storage.stat(key)).toBeNull();
        expect((await storage.stat('images/acct/own.qcow2'))?.size).toBe(9);
        expect((await storage.list({ limit: 100 })).items.map((item) => item.key)).toEqual([
          'images/acct/own.qcow2',
          "odd dir */we'ird $name.qcow2",
          'real.qcow2',
        ]);
        expect((await storage.list({ prefix: 'images/linkdir/', limit: 100 })).items).toEqual([]);
        expect((await storage.list({ prefix: 'images/linkdir/v', limit: 100 })).items).toEqual([]);
        expect((await storage.list({ prefix: 'images/', limit: 100 })).items.map((item) => item.key)).toEqual(['images/acct/own.qcow2']);
        expect(await storage.listIncomplete()).toEqual([]);
      });

      it('delete and abortIncomplete through a symlink remove nothing outside the root', async () => {
        await storage.delete('images/linkdir/victim.qcow2');
        await storage.delete('images/link.qcow2');
        await storage.abortIncomplete({
          key: 'images/linkdir/victim.qcow2',
          id: 'images/linkdir/.victim.qcow2.lzx0a1b2-0123abcd.part',
          startedAt: new Date(0),
        });
        expect(readFileSync(join(outside, 'dir', 'victim.qcow2'), 'utf8')).toBe('victim');
        expect(existsSync(join(outside, 'dir', '.victim.qcow2.lzx0a1b2-0123abcd.part'))).toBe(true);
        expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe(SECRET);
        await storage.delete('images/acct/own.qcow2');
        expect(existsSync(join(root, 'images', 'acct', 'own.qcow2'))).toBe(false);
        await storage.delete("odd dir */we'ird $name.qcow2");
        expect(existsSync(join(root, 'odd dir *', "we'ird $name.qcow2"))).toBe(false);
      });

      it('writes through a symlinked directory or onto a symlinked key are refused, leaving the outside untouched', async () => {
        for (const key of ['images/linkdir/new.qcow2', 'images/linkdir/sub/new.qcow2', 'images/link.qcow2', 'images/inside-link.qcow2']) {
          for (const size of [undefined, 5]) {
            const body = Readable.from([Buffer.from('hello')]);
            expect(await codeOf(storage.put(key, body, size === undefined ? {} : { size }))).toBe('STORAGE_UNAVAILABLE');
          }
        }
        expect(readdirSync(join(outside, 'dir')).sort()).toEqual(['.victim.qcow2.lzx0a1b2-0123abcd.part', 'victim.qcow2']);
        expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe(SECRET);
        expect(readFileSync(join(root, 'real.qcow2'), 'utf8')).toBe('real');
        // ordinary writes still work, including into directories that do not exist yet
        await storage.put('images/acct/new/fresh.qcow2', Readable.from([Buffer.from('fresh')]), { size: 5 });
        expect(readFileSync(join(root, 'images', 'acct', 'new', 'fresh.qcow2'), 'utf8')).toBe('fresh');
      });
    },
  );
}
