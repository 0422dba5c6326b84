/**
 * The chunked capture's start session (one remote script, answers and decisions over its stdio),
 * against fake virsh/qemu-img/qemu-nbd programs on PATH: every step, the fallback from an
 * incremental to a full job, hostile names passed through untouched, and no work directory left.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { StartSession, inspectionQuestions, type StartSessionInput } from '../../../drivers/hypervisor/libvirt/chunk-session';
import { HostCommands, QEMU_NBD_MALLOC_ENV } from '../../../drivers/hypervisor/libvirt/commands';
import { splitVirshAnswers, virshCommandString } from '../../../drivers/hypervisor/libvirt/virsh-batch';

const FAKE_VIRSH = `#!/bin/sh
# virsh -q -c URI 'CMD; CMD; ...' (a command string, as the inspection sends): evaluated as shell
# (the panel quotes every word with the shell's rules, which virsh shares), each subcommand running
# this fake through a wrapper in $FAKE_SUBS, each echo printing like virsh -q does.
if [ $# -eq 4 ]; then
  PATH="$FAKE_SUBS:$PATH"
  echo() { if [ "$1" = --err ]; then shift 2; printf 'error: %s\\n' "$*" >&2; else shift; printf %s "$*"; fi; }
  eval "$4"
  exit 0
fi
# virsh -q -c URI SUB ARGS...: logs its argv (fields separated by US, one call per line), answers from $FAKE.
# The session runs several virsh at once: each call's record goes to the log in one write, so
# records never interleave (one printf per field did, now and then, on a loaded machine).
rec=$(for a in "$@"; do printf '%s\\037' "$a"; done; printf '\\036')
printf '%s' "$rec" >>"$FAKE/log"
sub=$4; shift 4
arg() { while [ $# -gt 0 ]; do [ "$1" = "$want" ] && { printf %s "$2"; return; }; shift; done; }
case $sub in
  domstate) cat "$FAKE/state" ;;
  dumpxml) cat "$FAKE/domain.xml" ;;
  checkpoint-dumpxml) want=--checkpointname; n=$(arg "$@"); [ -f "$FAKE/cp-$n" ] && cat "$FAKE/cp-$n" || { echo "error: checkpoint not found" >&2; exit 1; } ;;
  checkpoint-delete) want=--checkpointname; n=$(arg "$@"); rm -f "$FAKE/cp-$n" ;;
  qemu-monitor-command) echo '{"return":[]}' ;;
  domfsfreeze|domfsthaw) ;;
  backup-begin)
    want=--backupxml; x=$(arg "$@"); want=--checkpointxml; c=$(arg "$@")
    i=$(ls "$FAKE" | grep -c '^begin-'); cp "$x" "$FAKE/begin-$i.xml"; [ -n "$c" ] && cp "$c" "$FAKE/checkpoint-$i.xml"
    if grep -q '<incremental>' "$x" && [ -f "$FAKE/refuse-incremental" ]; then echo "error: bitmap chain broken" >&2; exit 1; fi
    [ -f "$FAKE/refuse-all" ] && { echo "error: cannot start" >&2; exit 1; }
    python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$(cat "$FAKE/socket-path")" ;;
  *) echo "unexpected $sub" >&2; exit 9 ;;
esac
`;
const FAKE_QEMU_IMG = `#!/bin/sh
{ printf 'qemu-img'; for a in "$@"; do printf '\\037%s' "$a"; done; printf '\\036'; } >>"$FAKE/log"
echo '{"format-specific":{"data":{"bitmaps":[{"name":"cp-1","flags":["auto"]}]}}}'
`;
const FAKE_QEMU_NBD = `#!/bin/sh
{ printf 'qemu-nbd'; for a in "$@"; do printf '\\037%s' "$a"; done; printf '\\036'; } >>"$FAKE/log"
printf '%s' "$GLIBC_TUNABLES" >"$FAKE/qemu-nbd-env"
`;

const DOMAIN_XML = `<domain><name>x</name><devices><disk type='file' device='disk'><driver type='qcow2'/><source file='/d/a b.qcow2'/><target dev='vda'/></disk></devices></domain>`;

describe('chunked capture start session', () => {
  let root: string;
  let fake: string;
  let scratch: string;
  let savedPath: string | undefined;
  const cmd = new HostCommands(createLocalExecutor(), 'qemu:///system');
  const calls = () =>
    readFileSync(join(fake, 'log'), 'utf8')
      .split('\u001e')
      .filter(Boolean)
      .map((line) => line.split('\u001f').filter((a, i, all) => i < all.length - 1 || a !== ''));

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'ii-session-'));
    const bin = join(root, 'bin');
    mkdirSync(bin);
    for (const [name, text] of [
      ['virsh', FAKE_VIRSH],
      ['qemu-img', FAKE_QEMU_IMG],
      ['qemu-nbd', FAKE_QEMU_NBD],
    ] as const) {
      writeFileSync(join(bin, name), text);
      chmodSync(join(bin, name), 0o755);
    }
    const subs = join(root, 'subs');
    mkdirSync(subs);
    for (const sub of ['domstate', 'dumpxml', 'checkpoint-dumpxml', 'qemu-monitor-command']) {
      writeFileSync(join(subs, sub), `#!/bin/sh\nexec virsh -q -c qemu:///system ${sub} "$@"\n`);
      chmodSync(join(subs, sub), 0o755);
    }
    process.env.FAKE_SUBS = subs;
    savedPath = process.env.PATH;
    process.env.PATH = `${bin}:${process.env.PATH ?? ''}`;
  });
  afterAll(() => {
    process.env.PATH = savedPath;
    rmSync(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    fake = mkdtempSync(join(root, 'fake-'));
    scratch = mkdtempSync(join(root, 'scratch-'));
    process.env.FAKE = fake;
    writeFileSync(join(fake, 'state'), 'running\n');
    writeFileSync(join(fake, 'domain.xml'), DOMAIN_XML);
    writeFileSync(join(fake, 'socket-path'), join(scratch, 'nbd.sock'));
    writeFileSync(join(fake, 'log'), '');
  });

  const input = (over: Partial<StartSessionInput> = {}): StartSessionInput => ({
    domainName: "vm 'one'; $(touch /tmp/ii-pwned)\nx",
    scratchDir: scratch,
    workDir: join(scratch, 'ii-xml-00000000-00000001.d'),
    since: 'cp-1',
    create: 'cp-2',
    socket: join(scratch, 'nbd.sock'),
    qemuNbdPid: join(scratch, 'q.pid'),
    qemuNbdSocket: join(scratch, 'q.sock'),
    ...over,
  });

  it('answers every question in one step, starts an incremental job with its checkpoint, and leaves no work directory', async () => {
    writeFileSync(join(fake, 'cp-cp-1'), '<domaincheckpoint><name>cp-1</name></domaincheckpoint>');
    const session = new StartSession(cmd, input());
    const first = await session.inspection();
    expect([...first.keys()].sort()).toEqual(['blocks', 'create', 'df', 'since', 'state', 'xml']);
    expect(first.get('state')).toMatchObject({ exitCode: 0, stdout: 'running\n' });
    expect(first.get('xml')?.stdout).toBe(DOMAIN_XML);
    expect(first.get('since')?.stdout).toContain('<name>cp-1</name>');
    expect(first.get('create')).toMatchObject({ exitCode: 1, stderr: 'error: checkpoint not found\n' });
    expect(Number(first.get('df')?.stdout.trim().split('\n').at(-1))).toBeGreaterThan(0);
    const started = await session.beginBackup({
      incremental: '<domainbackup><incremental>cp-1</incremental></domainbackup>\n',
      full: '<domainbackup/>',
      checkpoint: "<domaincheckpoint><name>cp-2</name><description>é 'x'\n</description></domaincheckpoint>",
      deleteLeftover: false,
      freezeSeconds: 30,
    });
    expect(started.get('mode')?.stdout).toBe('incremental');
    expect(started.get('freeze')?.exitCode).toBe(0);
    expect(started.get('begin')?.exitCode).toBe(0);
    await session.close();
    expect(readFileSync(join(fake, 'begin-0.xml'), 'utf8')).toBe('<domainbackup><incremental>cp-1</incremental></domainbackup>\n');
    expect(readFileSync(join(fake, 'checkpoint-0.xml'), 'utf8')).toContain("é 'x'\n</description>");
    const domainName = input().domainName;
    // The hostile domain name reached every virsh call as one argument, unchanged.
    for (const call of calls()) expect(call.slice(0, 6)).toEqual(['-q', '-c', 'qemu:///system', call[3], '--domain', domainName]);
    expect(calls().map((c) => c[3])).toEqual(expect.arrayContaining(['domfsfreeze', 'backup-begin', 'domfsthaw']));
    expect(existsSync('/tmp/ii-pwned')).toBe(false);
    expect(readdirSync(scratch)).toEqual(['nbd.sock']);
  });

  it('prints all headers of a step before the outputs: output that looks like a header is only output', async () => {
    const hostile = `${DOMAIN_XML}\n@@ end 0 0 0\n@@ mode 0 11 0\nincremental\n@@ state 0 1 0\nx`;
    writeFileSync(join(fake, 'domain.xml'), hostile);
    writeFileSync(join(fake, 'state'), '');
    const session = new StartSession(cmd, input({ since: null }));
    const first = await session.inspection();
    expect([...first.keys()].sort()).toEqual(['create', 'df', 'state', 'xml']);
    expect(first.get('xml')).toMatchObject({ exitCode: 0, stdout: hostile, stderr: '' });
    expect(first.get('state')).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
    expect(first.get('create')).toMatchObject({ exitCode: 1, stdout: '', stderr: 'error: checkpoint not found\n' });
    const started = await session.beginBackup({
      incremental: null,
      full: '<x/>',
      checkpoint: null,
      deleteLeftover: false,
      freezeSeconds: null,
    });
    expect(started.get('mode')).toMatchObject({ exitCode: 0, stdout: 'full', stderr: '' });
    expect(started.get('begin')?.exitCode).toBe(0);
    await session.close();
  });

  it('falls back to a full job when libvirt refuses the incremental one, deleting the half-made checkpoint first', async () => {
    writeFileSync(join(fake, 'refuse-incremental'), '');
    writeFileSync(join(fake, 'cp-cp-2'), '<domaincheckpoint><name>cp-2</name></domaincheckpoint>');
    const session = new StartSession(cmd, input());
    const first = await session.inspection();
    expect(first.get('create')?.exitCode).toBe(0);
    const started = await session.beginBackup({
      incremental: '<domainbackup><incremental>cp-1</incremental></domainbackup>',
      full: '<domainbackup>full</domainbackup>',
      checkpoint: '<domaincheckpoint/>',
      deleteLeftover: true,
      freezeSeconds: null,
    });
    expect(started.get('mode')?.stdout).toBe('full');
    expect(started.has('freeze')).toBe(false);
    await session.close();
    const subcommands = calls().map((c) => c[3]);
    // The leftover first, then the refused incremental start, its checkpoint removed, the full start.
    expect(subcommands.slice(-4)).toEqual(['checkpoint-delete', 'backup-begin', 'checkpoint-delete', 'backup-begin']);
    expect(readFileSync(join(fake, 'begin-1.xml'), 'utf8')).toBe('<domainbackup>full</domainbackup>');
    expect(readdirSync(scratch)).toEqual(['nbd.sock']);
  });

  it('reports a job that could not start, and a session ended early removes its work directory', async () => {
    writeFileSync(join(fake, 'refuse-all'), '');
    const session = new StartSession(cmd, input({ since: null, create: null }));
    const first = await session.inspection();
    expect([...first.keys()].sort()).toEqual(['df', 'state', 'xml']);
    const started = await session.beginBackup({
      incremental: null,
      full: '<x/>',
      checkpoint: null,
      deleteLeftover: false,
      freezeSeconds: null,
    });
    expect(started.get('mode')?.stdout).toBe('failed');
    expect(started.get('begin')).toMatchObject({ exitCode: 1, stderr: 'error: cannot start\n' });
    await session.close();
    expect(readdirSync(scratch)).toEqual([]);

    const idle = new StartSession(cmd, input());
    await idle.inspection();
    await idle.close();
    expect(readdirSync(scratch)).toEqual([]);
  });

  it('a session killed by its signal leaves no work directory either', async () => {
    const controller = new AbortController();
    const session = new StartSession(cmd, { ...input(), signal: controller.signal });
    await session.inspection();
    controller.abort();
    await session.close();
    expect(readdirSync(scratch)).toEqual([]);
  });

  it('reads a stopped disk’s bitmaps and starts qemu-nbd with the fields as single arguments', async () => {
    writeFileSync(join(fake, 'state'), 'shut off\n');
    const session = new StartSession(cmd, input());
    await session.inspection();
    const path = "/d/a b'\n$(x).qcow2";
    const info = await session.imageInfo(path);
    expect(info.get('img')?.stdout).toContain('"cp-1"');
    const started = await session.startQemuNbd({ path, format: 'qcow2', exportName: 'vda', bitmap: 'cp-1', shared: 4 });
    expect(started.get('nbd')?.exitCode).toBe(0);
    await session.close();
    const log = calls();
    expect(log.find((c) => c[0] === 'qemu-img')).toEqual(['qemu-img', 'info', '--output=json', '-U', '-f', 'qcow2', path]);
    expect(log.find((c) => c[0] === 'qemu-nbd')).toEqual([
      'qemu-nbd',
      '--read-only',
      '--format=qcow2',
      '--fork',
      '--shared=4',
      `--pid-file=${join(scratch, 'q.pid')}`,
      `--socket=${join(scratch, 'q.sock')}`,
      '--export-name=vda',
      '--bitmap=cp-1',
      '--',
      path,
    ]);
    // qemu-nbd keeps its request buffers on the heap (see QEMU_NBD_MALLOC_ENV).
    expect(readFileSync(join(fake, 'qemu-nbd-env'), 'utf8')).toBe(QEMU_NBD_MALLOC_ENV.replace(/^GLIBC_TUNABLES=/, ''));
    expect(readdirSync(scratch)).toEqual([]);
  });
});

describe('the inspection as one virsh command string', () => {
  const questions = inspectionQuestions({ domainName: "vm 'one'; $(x)\n#y", since: 'cp-1', create: 'cp-2' });
  const nonce = '0123456789abcdef0123456789abcdef';

  it('quotes every word with the one quoting function and marks each answer on both streams', () => {
    expect(questions.map((q) => q.name)).toEqual(['state', 'xml', 'since', 'blocks', 'create']);
    const text = virshCommandString(questions, nonce);
    expect(
      text.startsWith(`domstate --domain 'vm '\\''one'\\''; $(x)\n#y'; echo -- @@${nonce}-state; echo --err -- @@${nonce}-state; `),
    ).toBe(true);
    expect(text).toContain(`qemu-monitor-command --domain 'vm '\\''one'\\''; $(x)\n#y' '{"execute":"query-block"}'; `);
    expect(inspectionQuestions({ domainName: 'x', since: null, create: null }).map((q) => q.name)).toEqual(['state', 'xml']);
  });

  it('splits the answers by their markers; a failed command is the one that printed an error', () => {
    const m = (name: string) => `@@${nonce}-${name}`;
    const stdout = `running\n${m('state')}<domain>@@ not a marker</domain>\n${m('xml')}${m('since')}{"return":[]}\n${m('blocks')}${m('create')}`;
    const stderr = [
      `error: ${m('state')}`,
      `error: ${m('xml')}`,
      'error: checkpoint not found',
      `error: ${m('since')}`,
      `error: ${m('blocks')}`,
      'error: no domain checkpoint',
      'x',
      `error: ${m('create')}`,
      '',
    ].join('\n');
    const answers = splitVirshAnswers({ name: 'virsh', exitCode: 0, stdout, stderr }, questions, nonce);
    expect(answers).toEqual([
      { name: 'state', exitCode: 0, stdout: 'running\n', stderr: '' },
      { name: 'xml', exitCode: 0, stdout: '<domain>@@ not a marker</domain>\n', stderr: '' },
      { name: 'since', exitCode: 1, stdout: '', stderr: 'error: checkpoint not found\n' },
      { name: 'blocks', exitCode: 0, stdout: '{"return":[]}\n', stderr: '' },
      { name: 'create', exitCode: 1, stdout: '', stderr: 'error: no domain checkpoint\nx\n' },
    ]);
  });

  it('takes a warning beside an answer for a success, and an error worded in another language for a failure', () => {
    const m = (name: string) => `@@${nonce}-${name}`;
    const two = questions.slice(0, 2);
    const stdout = `running\n${m('state')}${m('xml')}`;
    const stderr = `warning: something\nerror: ${m('state')}\nFehler: Domäne nicht gefunden\nerror: ${m('xml')}\n`;
    expect(splitVirshAnswers({ name: 'virsh', exitCode: 0, stdout, stderr }, two, nonce).map((a) => a.exitCode)).toEqual([0, 1]);
  });

  it('counts every question virsh never answered as failed, with what virsh said', () => {
    const stderr = 'error: failed to connect to the hypervisor\n';
    const answers = splitVirshAnswers({ name: 'virsh', exitCode: 1, stdout: '', stderr }, questions, nonce);
    expect(answers[0]).toEqual({ name: 'state', exitCode: 1, stdout: '', stderr });
    expect(answers.slice(1).every((a) => a.exitCode === 1)).toBe(true);
  });
});
