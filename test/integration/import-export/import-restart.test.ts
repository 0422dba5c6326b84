/**
 * A panel process killed (SIGKILL) in the middle of a stock OS image import from a URL, on real
 * parts (SQLite file, libvirt driver and qemu-img on this machine, a local template storage, a
 * local HTTP server of ours that stalls midway): received through the panel, and fetched by curl on
 * the hypervisor. While the import runs, another panel beside it browses the storage and reconciles
 * it: the import's work files belong to its task, and nothing of them is reported or deleted; once
 * the dead task's heartbeat lapsed they are orphans; the same worker, started again, recovers the
 * import by itself and removes everything it wrote (curl killed), although no image record names
 * the storage.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Actor, InstanceImages } from '../../../src';
import { sh } from '../../support/guests';
import { serveBytes, type ImageServer } from '../../support/image-server';
import { freshScratchDir, libvirtSkipReason } from '../libvirt/setup';
import { openImportPanel, type ImportPanelPaths } from './import-panel';

const skip = libvirtSkipReason();
const ADMIN: Actor = { kind: 'admin' };

/** Every file below `dir` (relative) with its size, and the fetch work directories. */
function entriesBelow(dir: string): { path: string; size: number }[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() || entry.name.includes('.fetch-'))
    .map((entry) => {
      const path = `${entry.parentPath}/${entry.name}`;
      return { path: path.slice(dir.length + 1), size: entry.isFile() ? statSync(path).size : 0 };
    });
}

/** The curl processes of this machine connecting to `port`. */
const curlsTo = (port: string) =>
  execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => /^\s*\d+ curl -sS /.test(line) && line.includes(`:${port}:`));

describe.skipIf(skip !== null)(`a panel killed mid-import recovers the import's files${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let work: string;
  let image: Buffer;
  const servers: ImageServer[] = [];
  const children: ChildProcess[] = [];
  const panels: InstanceImages[] = [];

  beforeAll(() => {
    work = freshScratchDir('import-restart');
    const source = `${work}/source.qcow2`;
    for (const argv of [
      ['qemu-img', 'create', '-q', '-f', 'qcow2', source, '64M'],
      ['qemu-io', '-c', 'write -P 0xab 0 4M', '-c', 'write -P 0x5c 20M 3M', source],
    ]) {
      const result = sh(argv[0]!, ...argv.slice(1));
      if (result.code !== 0) throw new Error(result.stderr);
    }
    image = readFileSync(source);
  });
  afterEach(async () => {
    for (const child of children.splice(0)) child.kill('SIGKILL');
    for (const panel of panels.splice(0)) await panel.close();
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    rmSync(work, { recursive: true, force: true });
  });

  /** Starts the panel child importing `url`; resolves with the future image's and the task's ids. */
  async function startImport(
    paths: ImportPanelPaths,
    url: string,
    fetch: boolean,
  ): Promise<{ imageId: string; taskId: string; child: ChildProcess }> {
    const args = [
      '--import',
      'tsx',
      join(import.meta.dirname, 'import-child.ts'),
      paths.database,
      paths.images,
      paths.scratch,
      'panel-1',
      url,
    ];
    const child = spawn(process.execPath, [...args, ...(fetch ? ['--fetch'] : []), '--configure'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [imageId, taskId] = await new Promise<string[]>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const match = /started (\S+) (\S+)/.exec(stdout);
        if (match) resolve([match[1]!, match[2]!]);
      });
      child.on('exit', (code, signal) => reject(new Error(`the panel exited early (${code ?? signal}): ${stderr}`)));
    });
    return { imageId: imageId!, taskId: taskId!, child };
  }

  for (const mode of ['received by the panel', 'fetched on the hypervisor'] as const) {
    it(`${mode}: work files belong to the running task, are orphans once it died, and its restarted worker removes them`, async () => {
      const fetch = mode === 'fetched on the hypervisor';
      const base = freshScratchDir(`import-restart-${fetch ? 'fetch' : 'panel'}`);
      const paths = { database: join(base, 'panel.db'), images: join(base, 'images'), scratch: join(base, 'scratch') };
      freshScratchDir(`import-restart-${fetch ? 'fetch' : 'panel'}/images`);
      freshScratchDir(`import-restart-${fetch ? 'fetch' : 'panel'}/scratch`);
      // 2 MiB, then the server stalls with the connection open: the import stays mid-download.
      const server = await serveBytes(image, { host: '127.0.0.2', stallAfter: 2 * 1024 * 1024 });
      servers.push(server);
      const { imageId, taskId, child } = await startImport(paths, server.url, fetch);
      await vi.waitFor(() => expect(entriesBelow(paths.images).some((entry) => entry.size > 0)).toBe(true), {
        timeout: 30_000,
        interval: 100,
      });
      const written = entriesBelow(paths.images);
      expect(written.every((entry) => entry.path.startsWith(`os-images/imported/${imageId}.`))).toBe(true);
      if (fetch) expect(curlsTo(new URL(server.url).port)).toHaveLength(1);

      // Another panel beside it (its reaper asleep, a short heartbeat timeout): the files belong to the running task.
      const beside = openImportPanel(paths, { workerId: 'panel-web', heartbeatTimeoutMs: 2000, reaperIntervalMs: 3_600_000 }, fetch);
      panels.push(beside);
      const [storage] = await beside.storages.listStorages(ADMIN);
      const storageId = storage?.id ?? '';
      const browsed = await beside.storages.browse(ADMIN, storageId, { hypervisorId: 'hv-local' });
      expect(browsed.items.length).toBeGreaterThan(0);
      expect(browsed.items.map((item) => [item.kind, item.taskId])).toEqual(browsed.items.map(() => ['ok', taskId]));
      const findings = await beside.storages.reconcile(ADMIN, storageId, {
        hypervisorId: 'hv-local',
        deleteOrphans: true,
        deleteLeftovers: true,
        dryRun: false,
      });
      expect(findings).toEqual([]);
      expect(entriesBelow(paths.images).map((entry) => entry.path)).toEqual(expect.arrayContaining(written.map((entry) => entry.path)));

      // Killed: once its heartbeat lapsed, the files are orphans again (a dry run only reports them).
      const exited = new Promise((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      await vi.waitFor(
        async () => {
          const page = await beside.storages.browse(ADMIN, storageId, { hypervisorId: 'hv-local' });
          expect(page.items.length).toBeGreaterThan(0);
          expect(page.items.every((item) => item.kind === 'orphan' && item.taskId === undefined)).toBe(true);
        },
        { timeout: 15_000, interval: 250 },
      );
      await beside.close();
      panels.splice(panels.indexOf(beside), 1);

      // The same worker started again recovers its import at once: nothing of it is left, curl is killed.
      const panel = openImportPanel(paths, { workerId: 'panel-1', heartbeatTimeoutMs: 3_600_000 }, fetch);
      panels.push(panel);
      await vi.waitFor(
        async () => expect(await panel.repositories.tasks.get(taskId)).toMatchObject({ status: 'failed', errorCode: 'INTERRUPTED' }),
        {
          timeout: 60_000,
          interval: 200,
        },
      );
      expect(entriesBelow(paths.images)).toEqual([]);
      expect(readdirSync(paths.scratch)).toEqual([]);
      await vi.waitFor(() => expect(curlsTo(new URL(server.url).port)).toEqual([]), { timeout: 5000 });
      expect(await panel.repositories.images.get(imageId)).toBeNull();
      rmSync(base, { recursive: true, force: true });
    });
  }
});
