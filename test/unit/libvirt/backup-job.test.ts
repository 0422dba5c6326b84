/**
 * Ending a backup job (one remote script: abort and ask in one `virsh`, remove the files, poll
 * `domjobinfo` until no job is active), against a fake `virsh` on PATH that reports a running job
 * for a few polls. test/integration/libvirt/capture.test.ts ends real jobs.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { endBackupJob } from '../../../drivers/hypervisor/libvirt/backup-job';
import type { Run } from '../../../drivers/hypervisor/libvirt/capture-run';
import { HostCommands } from '../../../drivers/hypervisor/libvirt/commands';
import type { ExecResult, Executor } from '../../../src/ports/executor';

// virsh -q -c URI SUB --domain NAME, or virsh -q -c URI 'SUB --domain NAME; SUB …' (a command
// string, which the fake runs with the shell's own quoting rules, as virsh's are): logs SUB and
// NAME; domjobinfo answers from $FAKE/jobinfo-N (N counts the polls; the last file given answers
// every later poll).
const FAKE_VIRSH = `#!/bin/sh
domjobabort() { printf '%s %s\\n' domjobabort "$2" >>"$FAKE/log"; }
domjobinfo() {
  printf '%s %s\\n' domjobinfo "$2" >>"$FAKE/log"
  n=$(grep -c '^domjobinfo ' "$FAKE/log")
  while [ "$n" -gt 0 ] && [ ! -f "$FAKE/jobinfo-$n" ]; do n=$((n-1)); done
  [ -f "$FAKE/jobinfo-$n" ] && cat "$FAKE/jobinfo-$n" || return 1
}
echo "$4" >>"$FAKE/calls"
shift 3
if [ $# -eq 1 ]; then eval "$1"; else "$@"; fi
`;
const RUNNING = 'Job type:         Unbounded   \nOperation:        Backup      \nTime elapsed:     30           ms\n';
const NONE = 'Job type:         None        \n';

describe('endBackupJob', () => {
  let root: string;
  let fake: string;
  let savedPath: string | undefined;
  const results: ExecResult[] = [];
  const local = createLocalExecutor();
  const recording: Executor = {
    label: 'recording',
    run: async (argv, options) => {
      const result = await local.run(argv, options);
      results.push(result);
      return result;
    },
    stream: (argv, options) => local.stream(argv, options),
    close: () => local.close(),
  };
  const run = (domainName: string) =>
    ({ ctx: { cmd: new HostCommands(recording, 'qemu:///system') }, domain: { name: domainName } }) as unknown as Run;
  const log = () => readFileSync(join(fake, 'log'), 'utf8').trim().split('\n');

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'ii-endjob-'));
    mkdirSync(join(root, 'bin'));
    writeFileSync(join(root, 'bin', 'virsh'), FAKE_VIRSH);
    chmodSync(join(root, 'bin', 'virsh'), 0o755);
    savedPath = process.env.PATH;
    process.env.PATH = `${join(root, 'bin')}:${process.env.PATH ?? ''}`;
  });
  afterAll(() => {
    process.env.PATH = savedPath;
    rmSync(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    fake = mkdtempSync(join(root, 'fake-'));
    process.env.FAKE = fake;
    writeFileSync(join(fake, 'log'), '');
    results.length = 0;
  });

  it('aborts, removes the files, and polls until the job is gone', async () => {
    const files = [join(fake, 'nbd sock'), join(fake, "scratch '$(x)'.qcow2")];
    for (const file of files) writeFileSync(file, '');
    writeFileSync(join(fake, 'jobinfo-1'), RUNNING);
    writeFileSync(join(fake, 'jobinfo-3'), NONE);
    const name = "vm 'one'; $(touch /tmp/ii-pwned)";
    await endBackupJob(run(name), files);
    expect(results.at(-1)?.exitCode).toBe(0);
    expect(log()).toEqual([`domjobabort ${name}`, `domjobinfo ${name}`, `domjobinfo ${name}`, `domjobinfo ${name}`]);
    for (const file of files) expect(existsSync(file)).toBe(false);
    expect(existsSync('/tmp/ii-pwned')).toBe(false);
  });

  it('stops at once when no job (or no domain) is left, and reads the job type whatever its case', async () => {
    writeFileSync(join(fake, 'jobinfo-1'), 'Job type:         completed\n');
    await endBackupJob(run('vm'), []);
    expect(results.at(-1)?.exitCode).toBe(0);
    expect(log()).toHaveLength(2);
    // The abort and the first question are one virsh process.
    expect(readFileSync(join(fake, 'calls'), 'utf8').trim().split('\n')).toHaveLength(1);

    writeFileSync(join(fake, 'log'), '');
    rmSync(join(fake, 'jobinfo-1'));
    await endBackupJob(run('vm'), []); // domjobinfo fails: the domain is gone
    expect(results.at(-1)?.exitCode).toBe(0);
    expect(log()).toHaveLength(2);
  });

  it('keeps polling while a job is active, even when its type is worded in capitals', async () => {
    writeFileSync(join(fake, 'jobinfo-1'), 'Job type:         UNBOUNDED\n');
    writeFileSync(join(fake, 'jobinfo-2'), 'Operation:        Backup\n'); // no type line: the job is gone
    await endBackupJob(run('vm'), []);
    expect(results.at(-1)?.exitCode).toBe(0);
    expect(log()).toEqual(['domjobabort vm', 'domjobinfo vm', 'domjobinfo vm']);
  });
});
