import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSqliteRepositories, sqliteMigrations } from '../../../adapters/sqlite';
import { makeImage } from '../../../src/testing';

const WORKER = fileURLToPath(new URL('./race-worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  result: Promise<{ won: string[] }>;
}

/** Starts a worker process; `ready` resolves once it has opened (and migrated) the file. */
function startWorker(file: string, mode: 'cap' | 'transition', id: number): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, file, mode, String(id)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.includes('ready\n')) markReady();
  });
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const result = new Promise<{ won: string[] }>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as { won: string[] });
      else reject(new Error(`worker ${id} exited with ${code}: ${stderr.slice(-2000)}`));
    });
  });
  // a worker that dies before "ready" must fail the test instead of hanging it
  return { child, ready: Promise.race([ready, result.then(() => undefined)]), result };
}

async function race(file: string, mode: 'cap' | 'transition', count: number): Promise<string[][]> {
  const workers = Array.from({ length: count }, (_, i) => startWorker(file, mode, i));
  try {
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.child.stdin?.write('go\n');
    return (await Promise.all(workers.map((w) => w.result))).map((r) => r.won);
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill();
  }
}

describe('sqlite: several processes on one WAL file', () => {
  let directory: string;
  let file: string;
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'ii-sqlite-race-'));
    file = join(directory, 'images.db');
  });
  afterEach(() => {
    rmSync(directory, { recursive: true, force: true });
  });

  it('migrate a fresh file at the same time, then hold the image cap under parallel inserts', async () => {
    const won = await race(file, 'cap', 3);
    expect(won.flat()).toHaveLength(10);
    const repositories = createSqliteRepositories({ filename: file });
    expect(await repositories.images.countActive('race')).toBe(10);
    expect(repositories.database.prepare('SELECT count(*) AS n FROM ii_migrations').get()).toEqual({ n: sqliteMigrations.length });
    await repositories.close();
  }, 60_000);

  it('let exactly one process win each compare-and-set transition', async () => {
    const setup = createSqliteRepositories({ filename: file });
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const image = makeImage();
      ids.push(image.id);
      await setup.images.insert(image);
    }
    await setup.close();
    const won = await race(file, 'transition', 3);
    expect(won.flat().sort()).toEqual([...ids].sort());
    const check = createSqliteRepositories({ filename: file });
    for (const [worker, mine] of won.entries()) {
      for (const id of mine) expect((await check.images.get(id))?.description).toBe(`worker-${worker}`);
    }
    await check.close();
  }, 60_000);
});
