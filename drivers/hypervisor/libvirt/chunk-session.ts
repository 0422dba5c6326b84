/**
 * The start of a chunked capture as ONE remote command: a fixed `sh` script that asks every
 * question at once (domain state and XML, free scratch space, the `since` and `create`
 * checkpoints, the disk's bitmaps), prints the answers, then waits on its stdin for the panel's
 * decision and carries it out — start the pull-mode backup job with its checkpoint (incremental,
 * falling back to full when libvirt refuses) inside the freeze window and wait for the export's
 * socket, or read a stopped disk's bitmaps and start `qemu-nbd`. Each remote command costs an SSH
 * session and a `virsh` start; asking over one command instead of four rounds saves most of the
 * time an incremental recapture spends before the data moves. The libvirt questions go to ONE
 * `virsh` (a command string of `;`-separated commands, each word quoted by the one quoting
 * function, each answer followed by a random marker on stdout and stderr), beside `df`: one
 * process start and one libvirt connection instead of five, which on a loaded hypervisor was most
 * of the inspection.
 *
 * Nothing is interpolated into the script: its inputs are positional arguments (quoted by the
 * executor with `drivers/exec/quote.ts`) or length-prefixed fields on its stdin, written to files
 * in a private work directory (mode 700 in the scratch directory, removed when the script exits)
 * and passed to the fixed programs as single arguments.
 *
 * Output, per step: a header `@@ NAME EXIT OUTLEN ERRLEN\n` for each record, the line
 * `@@ end 0 0 0\n`, then the records' stdout and stderr, that many bytes each, in the headers' order
 * (so that the script prints a step with one `stat` and one `cat`, not a few processes per record:
 * on a loaded hypervisor each costs milliseconds).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { InstanceImagesError } from '../../../src/errors';
import type { ExecResult } from '../../../src/ports/executor';
import { commandError, QEMU_NBD_MALLOC_ENV, type HostCommands } from './commands';
import { shellQuote } from '../../exec/quote';
import { splitVirshAnswers, virshCommandString, type SessionRecord, type VirshQuestion } from './virsh-batch';

export type { SessionRecord, VirshQuestion } from './virsh-batch';

/** The records of one step, by name. */
export type SessionStep = ReadonlyMap<string, SessionRecord>;

/** The script (see the module). Positional arguments: see {@link openStartSession}. */
const START_SCRIPT = [
  'u=$1; d=$2; sd=$3; w=$4; since=$5; create=$6; sock=$7; qpid=$8; qsock=$9',
  'set -f; umask 077',
  'mkdir -- "$w" || exit 120',
  'trap \'rm -rf -- "$w"\' EXIT',
  "trap 'exit 129' HUP INT TERM PIPE",
  'v() { virsh -q -c "$u" "$@"; }',
  // Function variables are global in sh: each function has its own names (qn, qrc, en, n, k, c, sz, fl, r).
  'q() { qn=$1; shift; "$@" </dev/null >"$w/$qn.out" 2>"$w/$qn.err"; qrc=$?; echo $qrc >"$w/$qn.rc"; }',
  // A step's answer costs two processes however many records it has: one `stat` gives every
  // size, the shell prints the headers, then one `cat` prints every output in the headers' order.
  'emit() {',
  '  en=$*; set --',
  '  for n in $en; do set -- "$@" "$w/$n.out" "$w/$n.err"; done',
  '  sz=""; [ $# -eq 0 ] || sz=$(stat -c %s -- "$@") || exit 123',
  '  set -- $sz',
  '  k=0; for n in $en; do k=$((k + 2)); done; [ $# -eq $k ] || exit 123',
  '  for n in $en; do IFS= read -r c <"$w/$n.rc" || exit 123; printf \'@@ %s %s %s %s\\n\' "$n" "$c" "$1" "$2"; shift 2; done',
  '  echo "@@ end 0 0 0"',
  '  for n in $en; do set -- "$@" "$w/$n.out" "$w/$n.err"; done',
  '  [ $# -eq 0 ] || cat -- "$@"',
  '}',
  // A field: its length on one line, then exactly that many bytes (head -c reads no further).
  'field() { IFS= read -r fl || exit 121; case $fl in ""|*[!0-9]*) exit 122 ;; esac; head -c "$fl" >"$w/$1"; }',
  'val() { r=$(cat "$w/$1"; echo x); r=${r%x}; }',
  // Every libvirt question in one virsh (one process start and one connection instead of five):
  // $10 is the panel's command string, each command followed by a marker on stdout and stderr.
  // An empty $10: the panel asked over libvirt's RPC protocol instead (rpc-start.ts); no first step.
  'if [ -n "${10}" ]; then',
  '  q virsh v "${10}" &',
  '  q df df -B1 --output=avail -- "$sd" &',
  '  wait',
  '  emit virsh df',
  'fi',
  'while IFS= read -r line; do',
  '  set -- $line',
  '  case ${1:-} in',
  '  image-info)',
  '    field path; val path',
  '    q img qemu-img info --output=json -U -f qcow2 "$r"',
  '    emit img ;;',
  '  backup)',
  '    fz=$2; left=$3; secs=$4',
  '    field inc; field full; field cp',
  '    set --; [ -s "$w/cp" ] && set -- --checkpointxml "$w/cp"',
  // A checkpoint of this name can only be left by an interrupted attempt at this same image.
  '    if [ "$left" = 1 ]; then',
  '      q left v checkpoint-delete --domain "$d" --checkpointname "$create"',
  '      [ "$qrc" = 0 ] || ! v checkpoint-dumpxml --domain "$d" --checkpointname "$create" >/dev/null 2>&1 || { emit left; exit 0; }',
  '    fi',
  '    r=""',
  '    [ "$fz" = 1 ] && { q freeze timeout -k 1 "$secs" virsh -q -c "$u" domfsfreeze --domain "$d"; r=freeze; }',
  '    m=full',
  '    if [ -s "$w/inc" ]; then',
  '      q begin v backup-begin --domain "$d" --backupxml "$w/inc" "$@"',
  '      if [ "$qrc" = 0 ]; then m=incremental',
  '      elif [ -e "$sock" ]; then m=failed',
  // libvirt checks the bitmap chain itself: its refusal only means a full read. The backup and
  // the checkpoint are one transaction; still, no half-made checkpoint stays.
  '      elif [ -s "$w/cp" ]; then v checkpoint-delete --domain "$d" --checkpointname "$create" >/dev/null 2>&1',
  '      fi',
  '    fi',
  '    if [ "$m" = full ]; then',
  '      q begin v backup-begin --domain "$d" --backupxml "$w/full" "$@"',
  '      [ "$qrc" = 0 ] || m=failed',
  '    fi',
  '    [ "$fz" = 1 ] && timeout -k 1 "$secs" virsh -q -c "$u" domfsthaw --domain "$d" >/dev/null 2>&1',
  '    if [ "$m" != failed ]; then i=0; while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; fi',
  '    printf %s "$m" >"$w/mode.out"; : >"$w/mode.err"; echo 0 >"$w/mode.rc"',
  '    emit $r begin mode',
  '    exit 0 ;;',
  '  qemu-nbd)',
  '    shared=$2',
  '    field fmt; field exp; field bm; field path',
  '    val fmt; fmt=$r; val exp; exp=$r; val bm; bm=$r; val path',
  `    q nbd env ${shellQuote(QEMU_NBD_MALLOC_ENV)} qemu-nbd --read-only "--format=$fmt" --fork "--shared=$shared" "--pid-file=$qpid" "--socket=$qsock" "--export-name=$exp" \${bm:+"--bitmap=$bm"} -- "$r"`,
  '    emit nbd',
  '    exit 0 ;;',
  '  *) exit 0 ;;',
  '  esac',
  'done',
].join('\n');

/** Most bytes the session may print (domain XML, query-block): far above what a domain has. */
const MAX_OUTPUT = 16 * 1024 * 1024;

/** Splits the script's output into steps of records. */
class RecordParser extends Writable {
  #buffer = Buffer.alloc(0);
  #total = 0;
  readonly #steps: SessionStep[] = [];
  readonly #waiters: Array<{ resolve: (step: SessionStep) => void; reject: (error: unknown) => void }> = [];
  #failure: unknown = null;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#total += chunk.length;
    if (this.#total > MAX_OUTPUT) {
      this.fail(new InstanceImagesError('COMMAND_FAILED', 'The capture start printed more than expected'));
      callback();
      return;
    }
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    try {
      this.#parse();
    } catch (error) {
      this.fail(error);
    }
    callback();
  }

  /** The headers of the step being read; once its `end` line is read, `bodies` is set and its outputs follow. */
  #headers: Array<{ name: string; exitCode: number; outLength: number; errLength: number }> = [];
  #bodies = false;

  #parse(): void {
    for (;;) {
      if (this.#bodies) {
        const length = this.#headers.reduce((sum, h) => sum + h.outLength + h.errLength, 0);
        if (this.#buffer.length < length) return;
        const step = new Map<string, SessionRecord>();
        let at = 0;
        for (const { name, exitCode, outLength, errLength } of this.#headers) {
          const stdout = this.#buffer.subarray(at, at + outLength).toString('utf8');
          const stderr = this.#buffer.subarray(at + outLength, at + outLength + errLength).toString('utf8');
          at += outLength + errLength;
          step.set(name, { name, exitCode, stdout, stderr });
        }
        this.#buffer = this.#buffer.subarray(length);
        this.#headers = [];
        this.#bodies = false;
        this.#deliver(step);
        continue;
      }
      const newline = this.#buffer.indexOf(10);
      if (newline < 0) return;
      const header = /^@@ ([a-z]+) (\d+) (\d+) (\d+)$/.exec(this.#buffer.subarray(0, newline).toString('latin1'));
      if (!header) throw new InstanceImagesError('COMMAND_FAILED', 'The capture start printed an unexpected line');
      this.#buffer = this.#buffer.subarray(newline + 1);
      const [, name = '', exit, out, err] = header;
      if (name === 'end') {
        this.#bodies = true;
        continue;
      }
      if (this.#headers.some((h) => h.name === name))
        throw new InstanceImagesError('COMMAND_FAILED', `The capture start printed ${name} twice in one step`);
      this.#headers.push({ name, exitCode: Number(exit), outLength: Number(out), errLength: Number(err) });
    }
  }

  #deliver(step: SessionStep): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(step);
    else this.#steps.push(step);
  }

  /** Every later `next()` rejects with `error` (the command ended, or broke the format). */
  fail(error: unknown): void {
    this.#failure ??= error;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#failure);
  }

  /** The next step's records. */
  next(): Promise<SessionStep> {
    const ready = this.#steps.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }
}

/** The inspection's virsh questions: state and XML always, `since` with the disk's bitmaps, `create`. */
export function inspectionQuestions(input: Pick<StartSessionInput, 'domainName' | 'since' | 'create'>): VirshQuestion[] {
  const domain = ['--domain', input.domainName];
  const questions: VirshQuestion[] = [
    { name: 'state', words: ['domstate', ...domain] },
    { name: 'xml', words: ['dumpxml', ...domain] },
  ];
  if (input.since !== null) {
    questions.push({ name: 'since', words: ['checkpoint-dumpxml', ...domain, '--checkpointname', input.since] });
    questions.push({ name: 'blocks', words: ['qemu-monitor-command', ...domain, '{"execute":"query-block"}'] });
  }
  if (input.create !== null) questions.push({ name: 'create', words: ['checkpoint-dumpxml', ...domain, '--checkpointname', input.create] });
  return questions;
}

/** The paths and names the session works with. */
export interface StartSessionInput {
  domainName: string;
  scratchDir: string;
  /** The session's private work directory (created by the script, removed when it exits). */
  workDir: string;
  since: string | null;
  create: string | null;
  /** The backup job's NBD socket. */
  socket: string;
  /** The pid file and socket of a stopped domain's `qemu-nbd`. */
  qemuNbdPid: string;
  qemuNbdSocket: string;
  signal?: AbortSignal | undefined;
  /** Whether the script asks the first questions (see {@link StartSession.inspection}); default true. */
  inspect?: boolean;
}

/** One running capture-start session (see the module). */
export class StartSession {
  readonly #stdin = new PassThrough();
  readonly #parser = new RecordParser();
  readonly #done: Promise<ExecResult>;
  readonly #workDir: string;
  readonly #questions: readonly VirshQuestion[];
  readonly #nonce: string;

  constructor(
    readonly cmd: HostCommands,
    input: StartSessionInput,
  ) {
    this.#workDir = input.workDir;
    this.#questions = inspectionQuestions(input);
    this.#nonce = randomBytes(16).toString('hex');
    const argv = [
      'sh',
      '-c',
      START_SCRIPT,
      'sh',
      cmd.uri,
      input.domainName,
      input.scratchDir,
      input.workDir,
      input.since ?? '',
      input.create ?? '',
      input.socket,
      input.qemuNbdPid,
      input.qemuNbdSocket,
      input.inspect === false ? '' : virshCommandString(this.#questions, this.#nonce),
    ];
    this.#done = cmd.executor.run(argv, { stdin: this.#stdin, stdout: this.#parser, signal: input.signal });
    this.#done.then(
      (result) =>
        this.#parser.fail(
          result.exitCode === 0
            ? new InstanceImagesError('CAPTURE_FAILED', 'The capture start ended before it answered')
            : commandError(['sh', 'capture start'], result, 'CAPTURE_FAILED'),
        ),
      (error: unknown) => this.#parser.fail(error),
    );
  }

  /** The answers to the first questions: `state`, `xml`, `df`, and `since`, `blocks`, `create` when asked. */
  async inspection(): Promise<SessionStep> {
    const step = await this.#parser.next();
    const answers = new Map(splitVirshAnswers(recordOf(step, 'virsh'), this.#questions, this.#nonce).map((r) => [r.name, r]));
    answers.set('df', recordOf(step, 'df'));
    return answers;
  }

  /** Sends one step: a command line of plain words, then each field length-prefixed. */
  #send(words: ReadonlyArray<string | number>, fields: readonly string[]): Promise<SessionStep> {
    const parts = [`${words.join(' ')}\n`];
    for (const field of fields) {
      const bytes = Buffer.from(field, 'utf8');
      parts.push(`${bytes.length}\n`, field);
    }
    this.#stdin.write(parts.join(''));
    return this.#parser.next();
  }

  /** A stopped qcow2 disk's `qemu-img info` (its bitmaps): record `img`. */
  imageInfo(path: string): Promise<SessionStep> {
    return this.#send(['image-info'], [path]);
  }

  /**
   * Starts the pull-mode backup job: `incremental` first when given, else (or when libvirt refuses
   * it and no socket appeared) `full`; with `checkpoint`, created in the same transaction; inside
   * a guest-agent freeze when `freezeSeconds` is given. Records: `left` (only when a leftover
   * checkpoint could not be deleted: nothing else was done), `freeze`, `begin` (the last
   * `backup-begin`), `mode` (`incremental`, `full` or `failed`).
   */
  beginBackup(options: {
    incremental: string | null;
    full: string;
    checkpoint: string | null;
    deleteLeftover: boolean;
    freezeSeconds: number | null;
  }): Promise<SessionStep> {
    const freeze = options.freezeSeconds !== null;
    return this.#send(
      ['backup', freeze ? 1 : 0, options.deleteLeftover ? 1 : 0, freeze ? (options.freezeSeconds as number).toFixed(3) : 0],
      [options.incremental ?? '', options.full, options.checkpoint ?? ''],
    );
  }

  /** Starts `qemu-nbd --read-only` on the stopped disk (with `bitmap` when given): record `nbd`. */
  startQemuNbd(options: { path: string; format: string; exportName: string; bitmap: string | null; shared: number }): Promise<SessionStep> {
    return this.#send(['qemu-nbd', options.shared], [options.format, options.exportName, options.bitmap ?? '', options.path]);
  }

  /**
   * Ends the session (the script exits and removes its work directory) and waits for it. A script
   * that did not end by itself (killed on abort, connection lost) may have left its directory:
   * it is removed by one more command.
   */
  async close(): Promise<void> {
    this.#stdin.end();
    const clean = await this.#done.then(
      (result) => result.exitCode === 0,
      () => false,
    );
    if (!clean) await this.cmd.run(['rm', '-rf', '--', this.#workDir]).catch(() => undefined);
  }
}

/** A record as the result of the command it ran, for {@link commandError}. */
export function asResult(record: SessionRecord): ExecResult {
  return { exitCode: record.exitCode, stdout: record.stdout, stderr: record.stderr };
}

/** The record `name` of a step. @throws CAPTURE_FAILED when the script did not print it. */
export function recordOf(step: SessionStep, name: string): SessionRecord {
  const record = step.get(name);
  if (!record) throw new InstanceImagesError('CAPTURE_FAILED', `The capture start did not report ${name}`);
  return record;
}
