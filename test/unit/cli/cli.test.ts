/**
 * The operator CLI against an SDK on fakes of our own ports: every command, its exit codes, its
 * `--json` output, and the output formats of the usage report.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../../src/cli';
import { table } from '../../../src/cli/output';
import { alice, setup, type Harness } from '../service/setup';

async function cli(h: Harness, argv: string[], options: { cwd?: string; noLoad?: boolean } = {}) {
  let stdout = '';
  let stderr = '';
  let closed = 0;
  const close = h.ii.close.bind(h.ii);
  const sdk = Object.assign(Object.create(h.ii) as typeof h.ii, {
    close: async () => {
      closed += 1;
    },
  });
  void close;
  const code = await runCli(argv, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    cwd: options.cwd ?? mkdtempSync(join(tmpdir(), 'ii-cli-')),
    ...(options.noLoad ? {} : { load: async () => sdk }),
  });
  return { code, stdout, stderr, closed };
}

/** A working directory with a config module (never imported: `load` is replaced). */
function configured(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ii-cli-'));
  writeFileSync(join(dir, 'instance-images.config.mjs'), 'export default null;\n');
  return dir;
}

describe('operator CLI', () => {
  it('never sends control characters of a name to the terminal', () => {
    expect(table([{ name: 'evil\u001b[2Jname' }], [{ header: 'NAME', value: (r) => r.name }])).toBe('NAME\nevil\\u001b[2Jname\n');
  });

  it('lists storages and checks their health, exiting 3 when one is unhealthy', async () => {
    const h = await setup();
    const cwd = configured();
    const storages = await cli(h, ['storages'], { cwd });
    expect(storages).toMatchObject({ code: EXIT.ok, closed: 1 });
    expect(storages.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+DRIVER\s+PURPOSE\s+ENABLED$/);
    expect(storages.stdout).toContain(h.storageId);
    expect(storages.stdout).not.toContain('top-secret-key');

    const healthy = await cli(h, ['health', '--json'], { cwd });
    expect(healthy.code).toBe(EXIT.ok);
    expect(JSON.parse(healthy.stdout)).toEqual([{ storageId: h.storageId, ok: true, message: 'fake ok', freeBytes: null }]);

    const original = h.ii.storages.checkHealth.bind(h.ii.storages);
    h.ii.storages.checkHealth = async () => ({ ok: false, message: 'bucket gone', freeBytes: null });
    const unhealthy = await cli(h, ['health', h.storageId], { cwd });
    expect(unhealthy.code).toBe(EXIT.unhealthy);
    expect(unhealthy.stdout).toContain('bucket gone');
    h.ii.storages.checkHealth = original;
  });

  it('browses, reconciles as a dry run by default, and exits 4 on findings only when asked', async () => {
    const h = await setup();
    const cwd = configured();
    h.world.files.set('bucket:images/planted-orphan.qcow2', { bytes: Buffer.from('x'), modifiedAt: new Date() });
    const browse = await cli(h, ['browse', h.storageId, '--json'], { cwd });
    expect(browse.code).toBe(EXIT.ok);
    expect(JSON.parse(browse.stdout).items).toEqual([expect.objectContaining({ key: 'images/planted-orphan.qcow2', kind: 'orphan' })]);

    const dry = await cli(h, ['reconcile', h.storageId, '--delete-orphans'], { cwd });
    expect(dry.code).toBe(EXIT.ok);
    expect(dry.stderr).toContain('dry run');
    expect(dry.stdout).toMatch(/orphan\s+images\/planted-orphan\.qcow2\s+deleted-file \(dry run\)/);
    expect(h.world.files.has('bucket:images/planted-orphan.qcow2')).toBe(true);

    const strict = await cli(h, ['reconcile', h.storageId, '--fail-on-findings', '--json'], { cwd });
    expect(strict.code).toBe(EXIT.findings);

    const applied = await cli(h, ['reconcile', h.storageId, '--delete-orphans', '--apply'], { cwd });
    expect(applied.code).toBe(EXIT.ok);
    expect(h.world.files.has('bucket:images/planted-orphan.qcow2')).toBe(false);
    expect((await cli(h, ['reconcile', h.storageId], { cwd })).stdout).toBe('nothing to reconcile\n');
  });

  it('prints the usage report as a table, CSV (formula-safe) or JSON, and lists tasks', async () => {
    const h = await setup();
    const cwd = configured();
    await h.ii.images.createImage(alice, { instanceId: 'web-1', name: '=HYPERLINK("x")' });
    await h.ii.idle();
    h.clock.now = new Date('2026-11-05T10:15:00.000Z');
    const period = ['--from', '2026-11-01', '--to', '2026-12-01'];
    const tableOut = await cli(h, ['usage', ...period], { cwd });
    expect(tableOut.code).toBe(EXIT.ok);
    expect(tableOut.stdout).toMatch(/^ACCOUNT\s+IMAGE\s+NAME\s+SIZE GB\s+RATE\s+HOURS\s+AMOUNT USD/);
    expect(tableOut.stdout).toMatch(/TOTAL USD \d+\.\d{2}\n$/);
    const csvOut = await cli(h, ['usage', ...period, '--format', 'csv'], { cwd });
    const [header, line] = csvOut.stdout.split('\r\n');
    expect(header).toBe('ACCOUNT,IMAGE,NAME,SIZE GB,RATE,HOURS,AMOUNT USD');
    expect(line).toContain(`"'=HYPERLINK(""x"")"`);
    expect(line).toMatch(/,0\.05,48,0\.00$/);
    const jsonOut = await cli(h, ['usage', ...period, '--json'], { cwd });
    expect(JSON.parse(jsonOut.stdout).images.lines).toHaveLength(1);

    const tasks = await cli(h, ['tasks', '--type', 'capture', '--json'], { cwd });
    expect(JSON.parse(tasks.stdout).items).toEqual([expect.objectContaining({ type: 'capture', status: 'completed' })]);
    const recover = await cli(h, ['recover'], { cwd });
    expect(recover).toMatchObject({ code: EXIT.ok, stdout: expect.stringContaining('interrupted tasks: 0') as unknown });
  });

  it('answers bad usage with exit 2 and failures with exit 1 and the error code, closing the SDK', async () => {
    const h = await setup();
    const cwd = configured();
    expect((await cli(h, [], { cwd })).code).toBe(EXIT.usage);
    expect((await cli(h, ['--help'], { cwd })).stdout).toContain('Usage: instance-images');
    expect(await cli(h, ['frobnicate'], { cwd })).toMatchObject({
      code: EXIT.usage,
      stderr: expect.stringContaining('Unknown command') as unknown,
    });
    expect(await cli(h, ['storages', '--bogus'], { cwd })).toMatchObject({ code: EXIT.usage });
    expect(await cli(h, ['browse'], { cwd })).toMatchObject({
      code: EXIT.usage,
      stderr: expect.stringContaining('needs a storage id') as unknown,
    });
    expect(await cli(h, ['usage', '--from', 'yesterday', '--to', '2026-12-01'], { cwd })).toMatchObject({ code: EXIT.usage });
    expect(await cli(h, ['tasks', '--limit', '0'], { cwd })).toMatchObject({ code: EXIT.usage });
    const missing = await cli(h, ['browse', '00000000-0000-4000-8000-000000000001'], { cwd });
    expect(missing).toMatchObject({ code: EXIT.failed, closed: 1 });
    expect(missing.stderr).toMatch(/^NOT_FOUND: /);
    const bad = await cli(h, ['tasks', '--status', 'sideways'], { cwd });
    expect(bad.code).toBe(EXIT.failed);
    expect(bad.stderr).toMatch(/^VALIDATION_FAILED: /);
    // No config module in the directory: exit 2 saying what to write.
    const none = await cli(h, ['storages'], {});
    expect(none).toMatchObject({ code: EXIT.usage, stderr: expect.stringContaining('instance-images.config.mjs') as unknown });
  });

  it('imports a real config module whose default export builds the SDK, and refuses one that does not', async () => {
    const h = await setup();
    const dir = mkdtempSync(join(tmpdir(), 'ii-cli-'));
    writeFileSync(join(dir, 'bad.mjs'), 'export default { not: "an sdk" };\n');
    const bad = await cli(h, ['storages', '--config', 'bad.mjs'], { cwd: dir, noLoad: true });
    expect(bad).toMatchObject({ code: EXIT.usage, stderr: expect.stringContaining('must export default the SDK') as unknown });
    const key = `__iiCliTest${Date.now()}`;
    (globalThis as Record<string, unknown>)[key] = h.ii;
    writeFileSync(join(dir, 'good.mjs'), `export default async () => globalThis[${JSON.stringify(key)}];\n`);
    const good = await cli(h, ['storages', '--json', '--config', join(dir, 'good.mjs')], { cwd: dir, noLoad: true });
    expect(good.code).toBe(EXIT.ok);
    expect(JSON.parse(good.stdout)).toEqual([expect.objectContaining({ id: h.storageId })]);
  });
});
