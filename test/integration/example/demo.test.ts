/**
 * `npm run demo` end to end: the README's main job, run with --once (tour, then clean up) and
 * --no-install (libvirt is already started by the CI script).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { libvirtSkipReason } from '../libvirt/setup';

const missing = libvirtSkipReason();

describe.skipIf(missing !== null)(`npm run demo${missing ? ` (skipped: ${missing})` : ''}`, () => {
  it('captures the demo guest, lists it, reports usage, deploys, deletes, and cleans up', () => {
    const before = spawnSync('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name'], { encoding: 'utf8' }).stdout;
    const result = spawnSync('npm', ['run', 'demo', '--', '--once', '--no-install'], { encoding: 'utf8', timeout: 280_000 });
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.status, output).toBe(0);
    expect(output).toMatch(/Example panel listening on http:\/\/127\.0\.0\.1:\d+/);
    expect(output).toMatch(/100%/);
    expect(output).toMatch(/production-web-server-v2 .* available/);
    expect(output).toMatch(/Images total: \d+\.\d{2} USD/);
    expect(output).toMatch(/ii-demo-copy-\w+ is running/);
    const after = spawnSync('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name'], { encoding: 'utf8' }).stdout;
    expect(
      after
        .split('\n')
        .filter((n) => n.startsWith('ii-demo'))
        .sort(),
    ).toEqual(
      before
        .split('\n')
        .filter((n) => n.startsWith('ii-demo'))
        .sort(),
    );
  }, 300_000);
});
