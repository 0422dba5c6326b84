import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createPathStorage } from '../../../drivers/storage/local/driver';
import type { ExecResult, Executor } from '../../../src/ports/executor';

const LOCAL_CAPABILITIES = { shared: false, pathAccess: true } as const;

// Needs only sh, find, sort and awk on this machine (the local executor, no other service).
describe('path storage: hostile file names on disk', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'ii-sec-names-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('never lists a key forged by a newline or tab in a directory name', async () => {
    // `dir\nforged/x` would print the line "forged/x<TAB>size<TAB>mtime" from find.
    mkdirSync(join(root, 'dir\nforged'), { recursive: true });
    writeFileSync(join(root, 'dir\nforged', 'x'), 'a');
    mkdirSync(join(root, 'tab\tdir'), { recursive: true });
    writeFileSync(join(root, 'tab\tdir', 'y'), 'b');
    writeFileSync(join(root, 'real'), 'c');
    const storage = createPathStorage({ name: 'local', root, executor: createLocalExecutor(), capabilities: LOCAL_CAPABILITIES });
    const page = await storage.list({ limit: 100 });
    expect(page.items.map((item) => item.key)).toEqual(['real']);
  });
});

describe('path storage: hostile list cursors', () => {
  it('rejects a cursor that decodes to a control character with VALIDATION_FAILED, running nothing', async () => {
    const calls: string[][] = [];
    const executor: Executor = {
      label: 'fake',
      async run(argv): Promise<ExecResult> {
        calls.push([...argv]);
        return { exitCode: 0, stdout: '', stderr: '' };
      },
      async stream() {
        throw new Error('not used');
      },
      async close() {},
    };
    const storage = createPathStorage({ name: 'local', root: '/srv/images', executor, capabilities: LOCAL_CAPABILITIES });
    // base64url of "\0" and of "a\nb": both round-trip through the cursor encoding.
    for (const cursor of ['AA', Buffer.from('a\nb').toString('base64url')]) {
      await expect(storage.list({ cursor })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    }
    expect(calls).toEqual([]);
  });
});
