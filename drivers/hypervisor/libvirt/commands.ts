/**
 * Runs virsh, qemu-img and file tools on the hypervisor through an {@link Executor}. Every
 * argument is an argv element (quoted by the executor over SSH); nothing is ever a shell string.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { InstanceImagesError, type ErrorCode } from '../../../src/errors';
import type { ExecOptions, ExecResult, Executor } from '../../../src/ports/executor';
import { backgroundFlusher, NO_SYMLINK_FUNCTION } from '../../exec/scripts';
import { lastProgressPercent, parseDfAvail, parseDfAvailList, parseQemuImgInfo, type QemuImgInfo } from './parsers';

/**
 * `sh -c` script: writes stdin to file `$1` and, when `$2` is not empty, the text `$3` to file `$2`
 * (mode 600), runs the rest of the arguments, removes the files, exits with the command's status.
 */
const WITH_FILE_SCRIPT = [
  'umask 077; f=$1; g=$2; t=$3; shift 3',
  'cat > "$f" || { rm -f -- "$f"; exit 125; }',
  'if [ -n "$g" ]; then printf %s "$t" > "$g" || { rm -f -- "$f" "$g"; exit 125; }; fi',
  '"$@"; s=$?; rm -f -- "$f" ${g:+"$g"}; exit $s',
].join('\n');
/** Exit status of the path scripts when a path is, or passes through, a symbolic link below its storage root. */
export const LINKED_PATH_EXIT = 47;
/** Exit status of {@link CHECK_FILE_SCRIPT} when the file is missing or not a regular file. */
export const MISSING_FILE_EXIT = 44;

/** Exit status of {@link PINNED_SCRIPT} when the pinned source does not have the expected sha256. */
export const SOURCE_CHECKSUM_EXIT = 48;

/**
 * `sh -c` script that runs a command (the arguments after the sixth) on files it opened itself:
 *
 * - Output `$1` (if not empty), below storage root `$2` (if not empty), is created as descriptor 3,
 *   and every argument equal to `$1` is replaced by `/dev/fd/3`:
 *   - the script enters the file's directory (`cd -P`, so the shell now holds that directory,
 *     wherever a link swapped in later points) and, with a root, checks that the directory's
 *     physical path is the root's followed by the file's directory below it, so no component
 *     below the root is a link;
 *   - it removes whatever has the file's name there (a stale part file, or a link someone with
 *     access to a shared storage planted so that a root process would overwrite its target) and
 *     creates the file exclusively (`set -C`);
 *   - it checks where descriptor 3 really points (`/proc/$$/fd/3`), so a link planted in between
 *     is caught before anything is written;
 *   - with `$6` not empty, the file is written back in the background while the command runs
 *     ({@link backgroundFlusher}), so that a final fsync right after it waits for little.
 * - Source `$3` (if not empty), below storage root `$4` (if not empty), is opened as descriptor 4
 *   (the command names it `/dev/fd/4`). With a root, the script checks that the descriptor's
 *   physical path is the root's followed by the source's path below it. With `$5`, it checks the
 *   source's sha256 through that same descriptor. The command then reads exactly the bytes that
 *   were checked, whatever is swapped in under the name.
 *
 * Exits {@link LINKED_PATH_EXIT} when a link was found, {@link SOURCE_CHECKSUM_EXIT} on a
 * checksum mismatch, and otherwise with the command's status.
 */
const PINNED_SCRIPT = [
  'f=$1; r=$2; src=$3; sr=$4; sha=$5; wb=$6; shift 6',
  'if [ -n "$src" ]; then',
  '  exec 4<"$src" || exit 1',
  '  if [ -n "$sr" ]; then',
  '    case "$src" in "$sr"/*) ;; *) echo "the source is not below the storage root" >&2; exit 47 ;; esac',
  '    srp=$(cd -P -- "$sr" && pwd -P) || exit 1',
  '    [ "$(readlink "/proc/$$/fd/4")" = "$srp/${src#"$sr"/}" ] || { echo "the source is, or passes through, a symbolic link below the storage root" >&2; exit 47; }',
  '  fi',
  '  if [ -n "$sha" ]; then',
  '    h=$(openssl dgst -sha256 -r /dev/fd/4) || exit 1',
  '    [ "${h%% *}" = "$sha" ] || { echo "the source does not match its recorded sha256" >&2; exit 48; }',
  '  fi',
  'fi',
  'w=',
  'if [ -n "$f" ]; then',
  '  d=${f%/*}; b=${f##*/}',
  '  cd -P -- "${d:-/}" || exit 1',
  '  if [ -n "$r" ]; then',
  '    rp=$(cd -P -- "$r" && pwd -P) || exit 1',
  '    case "$d/" in "$r"/*) ;; *) echo "the file is not below the storage root" >&2; exit 47 ;; esac',
  '    [ "$(pwd -P)" = "$rp${d#"$r"}" ] || { echo "the file\'s directory is, or passes through, a symbolic link below the storage root" >&2; exit 47; }',
  '  fi',
  '  rm -f -- "./$b" || exit 1',
  '  set -C; exec 3>"./$b"; set +C',
  '  [ "$(readlink "/proc/$$/fd/3")" = "$(pwd -P)/$b" ] || { echo "a symbolic link was planted as the file" >&2; exit 47; }',
  '  o=/dev/fd/3',
  '  if [ -n "$wb" ]; then',
  `    ${backgroundFlusher('o')}`,
  '  fi',
  '  n=$#; while [ "$n" -gt 0 ]; do a=$1; shift; [ "$a" != "$f" ] || a=$o; set -- "$@" "$a"; n=$((n - 1)); done',
  'fi',
  '"$@"; s=$?; [ -z "$w" ] || kill $w 2>/dev/null; exit $s',
].join('\n');

/** The path under which a command run with a pinned source (see {@link HostCommands.runPinned}) reads it. */
export const PINNED_SOURCE = '/dev/fd/4';

/**
 * The environment of every `qemu-nbd` the driver starts (`env` then this, then the argv): glibc's
 * malloc serves buffers of up to 64 MiB from its heap and keeps up to 256 MiB freed there. Without
 * it, qemu-nbd maps a new buffer for each large NBD request and unmaps it after, so the kernel
 * zero-fills and faults in every page of every request's buffer: writing 512 MiB over NBD into a
 * new qcow2 here cost qemu-nbd 2.07 s of system time (3.37 s in all), and 0.29 s (1.36 s) with it.
 * Other C libraries ignore the variable.
 */
export const QEMU_NBD_MALLOC_ENV = 'GLIBC_TUNABLES=glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=268435456';

/**
 * `sh -c` script: exits 0 when `$1` is a regular file that, below storage root `$2` (when not
 * empty), neither is nor passes through a symbolic link; {@link LINKED_PATH_EXIT} when it is or
 * does (or is not below the root); {@link MISSING_FILE_EXIT} when it is missing or not a file.
 */
const CHECK_FILE_SCRIPT = [
  NO_SYMLINK_FUNCTION,
  'f=$1; r=$2',
  'if [ -n "$r" ]; then',
  '  case "$f" in "$r"/*) ;; *) exit 47 ;; esac',
  '  no_symlink "$r" "${f#"$r"/}" || exit 47',
  'fi',
  '[ -f "$f" ] || exit 44',
].join('\n');

/** `sh -c` script: the size of file `$1` on one line, then `qemu-img info` of it read as format `$2`. */
/**
 * `sh -c` script: the size of qcow2 file `$1` and the exit status of its `qemu-img check` (run
 * alongside) on one line, then its `qemu-img info` (JSON). The check's own output is dropped (a
 * truncated image prints thousands of lines); its status says what was found.
 */
const SIZE_INFO_CHECK_SCRIPT = [
  's=$(stat -c %s -- "$1") || exit 1',
  'qemu-img check -f qcow2 "$1" >/dev/null 2>&1 & p=$!',
  'i=$(qemu-img info --output=json -f qcow2 "$1") || { wait $p; exit 1; }',
  'wait $p; c=$?',
  'printf "%s %s\n%s\n" "$s" "$c" "$i"',
].join('\n');
/** Exit status of {@link TARGET_SCRIPT} when the target exists. */
const TARGET_EXISTS_EXIT = 45;
/** Exit status of {@link TARGET_SCRIPT} when the target's directory is missing or not a directory. */
const TARGET_DIRECTORY_EXIT = 46;
/** `sh -c` script: whether `$1` is free (exists: {@link TARGET_EXISTS_EXIT}) in directory `$2` (missing: {@link TARGET_DIRECTORY_EXIT}). */
const TARGET_SCRIPT = '! [ -e "$1" ] || exit 45\n[ -d "$2" ] || exit 46';
/**
 * `sh -c` script: renames `$2` to `$3` (replacing it) and fsyncs directory `$4`; with `$1` not
 * empty, fsyncs `$2` itself first.
 */
const PUBLISH_SCRIPT = '[ -z "$1" ] || sync -- "$2" || exit 1\nmv -f -T -- "$2" "$3" && exec sync -- "$4"';
/**
 * `sh -c` script: creates directory `$1` unless empty (refusing with {@link LINKED_PATH_EXIT} when
 * it is, or passes through, a symbolic link below storage root `$2`, if not empty), then prints
 * the free bytes of each further path.
 */
const FREE_SCRIPT = [
  NO_SYMLINK_FUNCTION,
  'mk=$1; r=$2; shift 2',
  'if [ -n "$mk" ] && [ -n "$r" ]; then',
  '  case "$mk" in "$r") ;; "$r"/*) no_symlink "$r" "${mk#"$r"/}" || exit 47 ;; *) exit 47 ;; esac',
  'fi',
  '[ -z "$mk" ] || mkdir -p -- "$mk" || exit 1',
  'exec df -B1 --output=avail -- "$@"',
].join('\n');

/** Messages from virsh meaning "no such domain". */
const DOMAIN_MISSING = /failed to get domain|Domain not found|no domain with matching/i;
/** Messages meaning a filesystem is full. */
const NO_SPACE = /No space left on device|ENOSPC|Disk quota exceeded/i;

/** The last non-empty line(s) of stderr, shortened for an error message (never contains secrets: tool output only). */
export function tail(text: string, max = 400): string {
  const trimmed = text.trim();
  return trimmed.length > max ? `…${trimmed.slice(-max)}` : trimmed;
}

/** A command that exited non-zero, as an error with the right code. */
export function commandError(argv: readonly string[], result: ExecResult, fallback: ErrorCode = 'COMMAND_FAILED'): InstanceImagesError {
  const output = `${result.stderr}\n${result.stdout}`;
  // virsh argv is `virsh -q -c URI COMMAND ...`: name the subcommand, never the arguments (user strings).
  const program =
    argv[0] === 'virsh' ? `virsh ${argv[4] ?? ''}`.trim() : `${argv[0] ?? ''} ${argv[0] === 'qemu-img' ? (argv[1] ?? '') : ''}`.trim();
  let code: ErrorCode = fallback;
  if (DOMAIN_MISSING.test(output)) code = 'NOT_FOUND';
  else if (NO_SPACE.test(output)) code = 'STORAGE_FULL';
  return new InstanceImagesError(code, `${program} failed (exit ${result.exitCode ?? 'signal'}): ${tail(result.stderr || result.stdout)}`, {
    details: { exitCode: result.exitCode },
  });
}

/** The error of a path that is, or passes through, a symbolic link below its storage root. */
export function linkedPath(what = 'The file'): InstanceImagesError {
  return new InstanceImagesError(
    'VALIDATION_FAILED',
    `${what} is, or passes through, a symbolic link below the image storage's root; links there are never followed`,
  );
}

/**
 * A storage root as the path scripts take it: `''` for none, else the absolute directory without
 * trailing slashes. @throws VALIDATION_FAILED for a relative root or `/`.
 */
function rootArg(root: string | undefined): string {
  if (root === undefined) return '';
  const trimmed = root.replace(/\/+$/, '');
  if (!root.startsWith('/') || trimmed === '' || root.includes('\0')) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'A storage root must be an absolute directory other than "/"', {
      fields: [{ path: 'root', message: 'must be an absolute directory other than "/"' }],
    });
  }
  return trimmed;
}

/** A file a command reads through a descriptor the script opened and checked (see {@link HostCommands.runPinned}). */
export interface PinnedSource {
  /** Absolute path of the file. */
  path: string;
  /** The storage root it lies below; without it, links are not checked. */
  root?: string | undefined;
  /** Its expected sha256 (lowercase hex), checked through the same descriptor before the command runs. */
  sha256?: string | undefined;
}

/** Thin helpers over an executor bound to one libvirt URI. */
export class HostCommands {
  constructor(
    /** The executor of the hypervisor. */
    readonly executor: Executor,
    /** The libvirt URI on the hypervisor. */
    readonly uri: string,
  ) {}

  /** Runs a command; a non-zero exit throws (NOT_FOUND / STORAGE_FULL / `fallback`). */
  async run(argv: readonly string[], options: ExecOptions = {}, fallback: ErrorCode = 'COMMAND_FAILED'): Promise<ExecResult> {
    const result = await this.executor.run(argv, options);
    if (result.exitCode !== 0) throw commandError(argv, result, fallback);
    return result;
  }

  /** Runs a command and returns its result whatever the exit code. */
  tryRun(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return this.executor.run(argv, options);
  }

  /** The argv of `virsh -c URI ARGS...`. */
  virshArgv(args: readonly string[]): string[] {
    return ['virsh', '-q', '-c', this.uri, ...args];
  }

  /** Runs virsh; a non-zero exit throws. */
  virsh(args: readonly string[], options: ExecOptions = {}, fallback: ErrorCode = 'COMMAND_FAILED'): Promise<ExecResult> {
    return this.run(this.virshArgv(args), options, fallback);
  }

  /** Runs virsh and returns its result whatever the exit code. */
  tryVirsh(args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return this.tryRun(this.virshArgv(args), options);
  }

  /** `qemu-img info --output=json [-U] [-f FMT] -- PATH`. */
  async qemuImgInfo(path: string, options: { shared?: boolean; format?: string; signal?: AbortSignal } = {}): Promise<QemuImgInfo> {
    const argv = ['qemu-img', 'info', '--output=json'];
    if (options.shared) argv.push('-U');
    if (options.format) argv.push('-f', options.format);
    argv.push(path);
    const result = await this.run(argv, { signal: options.signal });
    return parseQemuImgInfo(result.stdout);
  }

  /**
   * Runs a `qemu-img ... -p` command, reporting its percentage as it goes.
   * @param onPercent - called with 0–100 as qemu-img prints progress.
   * @param options.flush - a file the command writes: it is made anew (never through a link) and
   *   the command writes it through a descriptor (see {@link PINNED_SCRIPT}).
   * @param options.writeBack - write `flush` back in the background every 100 ms (`sync -d`), so
   *   that an fsync right after the command waits for little (default true). A caller that fsyncs
   *   while it reads the file anyway (a capture hashes its output) passes false: the write-back
   *   then overlaps that read instead of slowing the copy.
   * @param options.root - the storage root `flush` must lie below without passing through a link.
   * @param options.source - a file the command reads as {@link PINNED_SOURCE} (see {@link runPinned}).
   * @throws VALIDATION_FAILED for a path through a link; CHECKSUM_MISMATCH.
   */
  async qemuImgWithProgress(
    argv: readonly string[],
    onPercent: (percent: number) => void,
    options: { signal?: AbortSignal; fallback?: ErrorCode; flush?: string; root?: string; writeBack?: boolean; source?: PinnedSource } = {},
  ): Promise<ExecResult> {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        const percent = lastProgressPercent(chunk.toString('latin1'));
        if (percent !== null) {
          try {
            onPercent(percent);
          } catch {
            // a failing progress listener must not break the copy
          }
        }
        callback();
      },
    });
    if (options.flush === undefined && options.source === undefined)
      return this.run(argv, { stdout: sink, signal: options.signal }, options.fallback);
    const result = await this.runPinned(
      argv,
      { stdout: sink, signal: options.signal },
      {
        ...(options.flush === undefined ? {} : { output: options.flush, outputRoot: options.root, writeBack: options.writeBack ?? true }),
        ...(options.source ? { source: options.source } : {}),
      },
    );
    if (result.exitCode !== 0) throw commandError(argv, result, options.fallback);
    return result;
  }

  /**
   * Runs `argv` with its output and/or source opened by {@link PINNED_SCRIPT}: `argv` names the
   * output by its path (replaced by a descriptor) and the source as {@link PINNED_SOURCE}.
   * Returns the result whatever the command's exit code.
   * @throws VALIDATION_FAILED for a path through a link; CHECKSUM_MISMATCH for a source whose
   *   sha256 differs from `source.sha256`.
   */
  async runPinned(
    argv: readonly string[],
    options: ExecOptions,
    files: { output?: string; outputRoot?: string | undefined; writeBack?: boolean; source?: PinnedSource },
  ): Promise<ExecResult> {
    const source = files.source;
    const result = await this.executor.run(
      [
        'sh',
        '-c',
        PINNED_SCRIPT,
        'sh',
        files.output ?? '',
        rootArg(files.outputRoot),
        source?.path ?? '',
        rootArg(source?.root),
        source?.sha256 ?? '',
        files.writeBack ? 'w' : '',
        ...argv,
      ],
      options,
    );
    if (result.exitCode === LINKED_PATH_EXIT) throw linkedPath(source && /source/.test(result.stderr) ? 'The image file' : 'The file');
    if (result.exitCode === SOURCE_CHECKSUM_EXIT)
      throw new InstanceImagesError('CHECKSUM_MISMATCH', 'The image does not match its recorded checksum; the deploy was stopped');
    return result;
  }

  /** Free bytes of the filesystem holding `path` (which must exist). */
  async freeBytes(path: string): Promise<number> {
    const result = await this.run(['df', '-B1', '--output=avail', '--', path]);
    return parseDfAvail(result.stdout);
  }

  /** Size in bytes of a file. */
  async fileSize(path: string): Promise<number> {
    const result = await this.run(['stat', '-c', '%s', '--', path]);
    const size = Number(result.stdout.trim());
    if (!Number.isSafeInteger(size)) throw new InstanceImagesError('COMMAND_FAILED', 'Unexpected stat output');
    return size;
  }

  /**
   * Whether `path` is a regular file that, below `root` (when given), neither is nor passes
   * through a symbolic link: `'file'`, `'missing'` or `'linked'`.
   */
  async checkFile(path: string, root?: string): Promise<'file' | 'missing' | 'linked'> {
    const result = await this.tryRun(['sh', '-c', CHECK_FILE_SCRIPT, 'sh', path, rootArg(root)]);
    if (result.exitCode === 0) return 'file';
    if (result.exitCode === LINKED_PATH_EXIT) return 'linked';
    if (result.exitCode === MISSING_FILE_EXIT) return 'missing';
    throw commandError(['sh', 'check'], result);
  }

  /**
   * Whether a new file may be made at `path` in `directory`, in one remote command: `'free'`,
   * `'exists'` (something is there, never overwritten) or `'no-directory'`.
   */
  async targetState(path: string, directory: string): Promise<'free' | 'exists' | 'no-directory'> {
    const result = await this.tryRun(['sh', '-c', TARGET_SCRIPT, 'sh', path, directory]);
    if (result.exitCode === 0) return 'free';
    if (result.exitCode === TARGET_EXISTS_EXIT) return 'exists';
    if (result.exitCode === TARGET_DIRECTORY_EXIT) return 'no-directory';
    throw commandError(['sh', 'test'], result);
  }

  /** Whether a path exists. */
  async exists(path: string): Promise<boolean> {
    return (await this.tryRun(['test', '-e', path])).exitCode === 0;
  }

  /** sha256 of a file with `openssl dgst` (hardware-accelerated, unlike coreutils sha256sum). */
  async sha256(path: string, signal?: AbortSignal): Promise<string> {
    const result = await this.run(['openssl', 'dgst', '-sha256', '-r', path], { signal });
    const match = /^([0-9a-f]{64})\b/.exec(result.stdout.trim());
    if (!match?.[1]) throw new InstanceImagesError('COMMAND_FAILED', 'Unexpected openssl dgst output');
    return match[1];
  }

  /** fsyncs the given files or directories (`sync -- PATH...`). */
  async fsync(...paths: string[]): Promise<void> {
    await this.run(['sync', '--', ...paths]);
  }

  /**
   * Runs `virsh ARGS...` with `content` in a new file in `dir` (mode 600) whose path `args` names,
   * in ONE remote command: the file is written from stdin, virsh runs, the file is removed
   * (virsh reads XML from files; `/dev/stdin` is not openable when stdin is a socket). With
   * `secondContent`, a second file holds it and `args` gets its path too. When the command itself
   * is interrupted (abort, dropped connection), the files are removed afterwards.
   * @throws like {@link virsh}.
   */
  async virshWithFile(
    dir: string,
    content: string,
    args: (path: string, secondPath?: string) => readonly string[],
    fallback: ErrorCode = 'COMMAND_FAILED',
    secondContent?: string,
  ): Promise<ExecResult> {
    const name = () => `${dir.replace(/\/+$/, '')}/ii-xml-00000000-${randomBytes(4).toString('hex')}.xml`;
    const path = name();
    const second = secondContent === undefined ? undefined : name();
    const virsh = this.virshArgv(args(path, second));
    let result: ExecResult;
    try {
      result = await this.executor.run(['sh', '-c', WITH_FILE_SCRIPT, 'sh', path, second ?? '', secondContent ?? '', ...virsh], {
        stdin: content,
      });
    } catch (error) {
      await this.remove(path, ...(second ? [second] : [])).catch(() => undefined);
      throw error;
    }
    if (result.exitCode !== 0) throw commandError(virsh, result, fallback);
    return result;
  }

  /**
   * Size in bytes, `qemu-img info` and the `qemu-img check` exit status (0 clean, 2 corruptions,
   * 3 leaks, 1 not completed) of a qcow2 file, in one remote command (the check runs alongside
   * the info). @throws COMMAND_FAILED when the file is missing or not a qcow2 image.
   */
  async qcow2Facts(path: string, signal?: AbortSignal): Promise<{ sizeBytes: number; info: QemuImgInfo; checkExit: number }> {
    const result = await this.run(['sh', '-c', SIZE_INFO_CHECK_SCRIPT, 'sh', path], { signal });
    const newline = result.stdout.indexOf('\n');
    const [size, check] = result.stdout.slice(0, Math.max(newline, 0)).trim().split(' ').map(Number);
    if (newline < 0 || !Number.isSafeInteger(size) || !Number.isSafeInteger(check))
      throw new InstanceImagesError('COMMAND_FAILED', 'Unexpected stat or qemu-img check output');
    return { sizeBytes: size!, checkExit: check!, info: parseQemuImgInfo(result.stdout.slice(newline + 1)) };
  }

  /**
   * Free bytes of the filesystems holding each of `paths` (which must exist, except `create`,
   * which is created first with `mkdir -p`), in one remote command.
   * @param root - the storage root `create` lies below: VALIDATION_FAILED, and nothing created,
   *   when `create` is or passes through a symbolic link below it.
   */
  async freeBytesOf(paths: readonly string[], create?: string, root?: string): Promise<number[]> {
    const argv = ['sh', '-c', FREE_SCRIPT, 'sh', create ?? '', rootArg(root), ...paths];
    const raw = await this.tryRun(argv);
    if (raw.exitCode === LINKED_PATH_EXIT) throw linkedPath();
    if (raw.exitCode !== 0) throw commandError(['df'], raw);
    const result = raw;
    const values = parseDfAvailList(result.stdout);
    if (values.length !== paths.length)
      throw new InstanceImagesError('COMMAND_FAILED', `Unexpected df output: ${values.length} values for ${paths.length} paths`);
    return values;
  }

  /**
   * Renames `from` to `to` (replacing it) and fsyncs `to`'s directory, in one remote command; with
   * `fsync`, `from` itself is fsynced first, in the same command.
   */
  async publish(from: string, to: string, directory: string, options: { fsync?: boolean } = {}): Promise<void> {
    await this.run(['sh', '-c', PUBLISH_SCRIPT, 'sh', options.fsync ? 'f' : '', from, to, directory]);
  }

  /** Removes files; missing ones are fine. */
  async remove(...paths: string[]): Promise<void> {
    if (paths.length === 0) return;
    await this.run(['rm', '-f', '--', ...paths]);
  }
}
