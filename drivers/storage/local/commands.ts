/**
 * The fixed shell scripts and error mapping of path-based storage (local and NFS). Scripts are
 * constant strings; every variable part is passed as a positional argument or an environment
 * variable, never spliced into the script. Over SSH the whole argv goes through `shellCommand`.
 * @module
 */
import { InstanceImagesError, isInstanceImagesError } from '../../../src/errors';
import type { ExecResult } from '../../../src/ports/executor';
import { backgroundFlusher, NO_SYMLINK_FUNCTION } from '../../exec/scripts';

/** Builds `sh -c SCRIPT sh ARGS...`: the arguments are `$1...` inside the script. */
export function shArgv(script: string, ...args: string[]): string[] {
  return ['sh', '-c', script, 'sh', ...args];
}

/**
 * Temp files of in-flight writes: `.<base>.<start time, base36 ms>-<8 hex>.part` in the key's
 * directory (same filesystem, so the final rename is atomic).
 */
export const TEMP_NAME = /^\.(.*)\.([0-9a-z]+)-([0-9a-f]{8})\.part$/;

/** The same pattern as a `find -regextype posix-extended -regex` over whole paths. */
export const TEMP_FIND_REGEX = '.*/\\.[^/]*\\.[0-9a-z]+-[0-9a-f]{8}\\.part';

/**
 * Lists regular files under `$1/$2` (root, start directory relative to it, always `./...`) in byte
 * order of their key, skipping temp files and paths with control characters anywhere (a newline or
 * tab in a directory name would otherwise forge lines), and symbolic links: `find` lists no link
 * (`-type f`) and enters no linked directory, and a start directory reached through a link lists
 * nothing. It prints at most
 * `II_LIMIT + 1` lines `key<TAB>size<TAB>mtime` with keys starting with `II_PREFIX` and greater than
 * `II_AFTER`. Sorting happens in `sort` (which spills to disk), so memory stays bounded.
 */
export const LIST_SCRIPT = [
  'export LC_ALL=C',
  NO_SYMLINK_FUNCTION,
  'cd -- "$1" 2>/dev/null || exit 0',
  '[ "$2" = . ] || no_symlink . "${2#./}" || exit 0',
  '[ -d "$2" ] || exit 0',
  'tab=$(printf "\\t")',
  `find "$2" -regextype posix-extended -type f ! -regex '${TEMP_FIND_REGEX}' ! -path '*[[:cntrl:]]*' -printf '%p\\t%s\\t%T@\\n' | sort -t "$tab" -k1,1 | awk -F "$tab" '`,
  '  BEGIN { p = "" ENVIRON["II_PREFIX"]; a = "" ENVIRON["II_AFTER"]; n = ENVIRON["II_LIMIT"] + 0; c = 0 }',
  '  { k = "" $1; if (substr(k, 1, 2) == "./") k = substr(k, 3);',
  '    if (substr(k, 1, length(p)) != p) next;',
  '    if (a != "" && k <= a) next;',
  '    print k "\\t" $2 "\\t" $3; c++; if (c > n) exit }',
  "'",
].join('\n');

/** Prints `relative path<TAB>mtime` of every temp file under `$1`. */
export const LIST_TEMP_SCRIPT = [
  'export LC_ALL=C',
  '[ -d "$1" ] || exit 0',
  `find "$1" -regextype posix-extended -type f -regex '${TEMP_FIND_REGEX}' ! -path '*[[:cntrl:]]*' -printf '%P\\t%T@\\n'`,
].join('\n');

/** Exit status of the read scripts when the file does not exist. */
export const MISSING_EXIT = 44;

/**
 * Shell lines that create file `$2` and choose how `dd` writes it: `bs="$b"` plus `${o:+"oflag=$o"}`.
 *
 * - Direct I/O in 4 MiB blocks (`oflag=direct`) when positional parameter `mode` is `direct` and
 *   the filesystem takes it (a `count=0` probe opens the file with O_DIRECT). The data goes from
 *   dd's buffer to the device, so there is no page-cache copy and no write-back left for the
 *   final fsync. `iflag=fullblock` keeps every block whole; GNU dd writes a short last block
 *   without O_DIRECT.
 * - Otherwise buffered 128 KiB blocks, written back in the background while dd runs
 *   ({@link backgroundFlusher}, pid in `w`).
 *
 * Direct I/O leaves the hypervisor's page cache to its guests: a 100 GiB capture written through
 * the cache would evict their cached data and queue gigabytes of dirty pages. Measured here (1 GiB
 * over SSH into ext4, 2 vCPUs, `npm run bench storage-local`), both ways are as fast as an unsynced
 * `ssh … 'cat > file'` (1.04–1.20×), durable; which of the two is faster varies within the noise.
 * @param mode - the positional parameter (a digit) holding `direct` or `buffered`.
 */
function prepareOutput(mode: '3' | '5'): string[] {
  return [
    ': > "$2" || exit 1',
    `w=; if [ "$${mode}" = direct ] && dd of="$2" oflag=direct count=0 status=none </dev/null 2>/dev/null; then b=4M o=direct; else b=128K o=; ${backgroundFlusher('2')}; fi`,
  ];
}

/** Ends the background write-back, if {@link prepareOutput} started one. */
const STOP_FLUSHER = '[ -z "$w" ] || kill $w 2>/dev/null';

/**
 * Creates directory `$1` and streams stdin into `$2`, fsynced (`sync FILE`) before it exits; `$3`
 * is the write mode (`direct` or `buffered`, see {@link prepareOutput}).
 */
export const WRITE_SCRIPT = [
  'mkdir -p -- "$1" || exit 1',
  ...prepareOutput('3'),
  `dd of="$2" bs="$b" iflag=fullblock \${o:+"oflag=$o"} status=none; s=$?; ${STOP_FLUSHER}; [ $s = 0 ] || exit 1`,
  'exec sync -- "$2"',
].join('\n');

/** Exit status of {@link WRITE_SIZED_SCRIPT} when fewer bytes than announced arrived. */
export const SIZE_MISMATCH_EXIT = 45;
/** Exit status of {@link WRITE_SIZED_SCRIPT} when the commit byte did not follow the data. */
export const NOT_COMMITTED_EXIT = 46;
/** The byte that follows exactly the announced number of bytes when the sender's data ended cleanly. */
export const COMMIT_BYTE = Buffer.from('C');

/**
 * Creates directory `$1`, reads exactly `$4` bytes of stdin into temp file `$2`, then one more byte:
 * only when that is the commit byte is the file fsynced and renamed to `$3`. A partial or
 * uncommitted temp file is removed. (`dd iflag=fullblock,count_bytes` never reads past `$4`.)
 * `$5` is the write mode (`direct` or `buffered`, see {@link prepareOutput}).
 */
export const WRITE_SIZED_SCRIPT = [
  'mkdir -p -- "$1" || exit 1',
  ...prepareOutput('5'),
  `dd of="$2" bs="$b" iflag=fullblock,count_bytes count="$4" \${o:+"oflag=$o"} status=none; s=$?; ${STOP_FLUSHER}; [ $s = 0 ] || exit 1`,
  '[ "$(stat -c %s -- "$2")" = "$4" ] || { rm -f -- "$2"; echo "fewer bytes than announced arrived" >&2; exit 45; }',
  '[ "$(head -c 1)" = C ] || { rm -f -- "$2"; echo "the data was not committed" >&2; exit 46; }',
  'sync -- "$2" && exec mv -f -T -- "$2" "$3"',
].join('\n');

/** Exit status of {@link WRITE_GUARD_SCRIPT} when the key is or passes through a symbolic link. */
export const SYMLINK_EXIT = 47;

/**
 * Streams file `$2` under root `$1`, or exits {@link MISSING_EXIT} when it is not a regular file or
 * is (or passes through) a symbolic link.
 */
export const READ_SCRIPT = [
  NO_SYMLINK_FUNCTION,
  'no_symlink "$1" "$2" || exit 44',
  '[ -f "$1/$2" ] || exit 44',
  'exec cat -- "$1/$2"',
].join('\n');

/** Streams `$4` bytes (all when empty) of file `$2` under root `$1` from offset `$3`, or exits {@link MISSING_EXIT} as {@link READ_SCRIPT} does. */
export const READ_RANGE_SCRIPT = [
  NO_SYMLINK_FUNCTION,
  'no_symlink "$1" "$2" || exit 44',
  '[ -f "$1/$2" ] || exit 44',
  'if [ -n "$4" ]; then exec dd if="$1/$2" bs=1M iflag=skip_bytes,count_bytes skip="$3" count="$4" status=none; fi',
  'exec dd if="$1/$2" bs=1M iflag=skip_bytes skip="$3" status=none',
].join('\n');

/**
 * Prints `size<TAB>mtime` of regular file `$2` under root `$1`; prints nothing when it is (or passes
 * through) a symbolic link, and fails with find's "No such file or directory" when it is missing.
 */
export const STAT_SCRIPT = [
  NO_SYMLINK_FUNCTION,
  'no_symlink "$1" "$2" || exit 0',
  'exec find "$1/$2" -maxdepth 0 -type f -printf \'%s\\t%T@\\n\'',
].join('\n');

/** Removes file `$2` under root `$1`; does nothing when it is (or passes through) a symbolic link. */
export const DELETE_SCRIPT = [NO_SYMLINK_FUNCTION, 'no_symlink "$1" "$2" || exit 0', 'exec rm -f -- "$1/$2"'].join('\n');

/**
 * Exits {@link SYMLINK_EXIT} when key `$2` under root `$1` is (or passes through) a symbolic link;
 * run before a write, which would otherwise create directories and files wherever the link points.
 */
export const WRITE_GUARD_SCRIPT = [NO_SYMLINK_FUNCTION, 'no_symlink "$1" "$2" || exit 47'].join('\n');

/**
 * Makes the directory of key `$2` under root `$1` (as a write does), or exits {@link SYMLINK_EXIT}
 * when the key is or passes through a symbolic link.
 */
export const PREPARE_SCRIPT = [WRITE_GUARD_SCRIPT, 'exec mkdir -p -- "$(dirname -- "$1/$2")"'].join('\n');

/** Sets `d` to the nearest existing directory at or above `$1` (the root is created on first write). */
const NEAREST_DIRECTORY = 'd=$1; while [ ! -d "$d" ]; do d=$(dirname -- "$d"); done';

/** Prints the free bytes of the filesystem that holds (or will hold) directory `$1`. */
export const FREE_SCRIPT = [NEAREST_DIRECTORY, 'df -B1 --output=avail -- "$d" | tail -n 1'].join('\n');

/**
 * Prints `<exists 0|1> <writable 0|1> <free bytes>` for directory `$1`; when it does not exist yet,
 * writability is that of the nearest existing parent (where it would be created).
 */
export const HEALTH_SCRIPT = [
  NEAREST_DIRECTORY,
  'e=0; [ "$d" = "$1" ] && e=1',
  'w=0; [ -w "$d" ] && w=1',
  'avail=$(df -B1 --output=avail -- "$d" | tail -n 1) || exit 4',
  'echo "$e $w $avail"',
].join('\n');

const FULL = /No space left on device|Disk quota exceeded|File too large/i;

/** First lines of stderr for a message (bounded; stderr of file tools carries paths, never secrets). */
export function stderrExcerpt(stderr: string): string {
  const text = stderr.trim().split('\n').slice(0, 3).join(' / ');
  return text.length > 400 ? `${text.slice(0, 400)}...` : text;
}

/**
 * Maps a failed command (non-zero exit) to STORAGE_FULL or STORAGE_UNAVAILABLE.
 *
 * Customers see the message and details of STORAGE_FULL (as of NOT_FOUND and CANCELLED), so it
 * names only what was being done ("write KEY") and "the image storage": never `where` (the root
 * and the executor's label, i.e. SSH user, host and hypervisor name) nor stderr (which carries
 * paths). Those go into the cause, an `Error` the HTTP adapter logs and never sends.
 * STORAGE_UNAVAILABLE is shown to operators only, so its message keeps `where`.
 */
export function commandFailure(result: ExecResult, what: string, where: string): InstanceImagesError {
  const excerpt = stderrExcerpt(result.stderr);
  if (FULL.test(result.stderr)) {
    return new InstanceImagesError('STORAGE_FULL', `Not enough space on the image storage to ${what}`, {
      cause: new Error(`Not enough space to ${what} on ${where}: ${excerpt}`),
      details: { exitCode: result.exitCode },
    });
  }
  return new InstanceImagesError(
    'STORAGE_UNAVAILABLE',
    `Could not ${what} on ${where} (exit ${result.exitCode ?? 'by signal'})${excerpt ? `: ${excerpt}` : ''}`,
    { details: { exitCode: result.exitCode } },
  );
}

/**
 * Maps an executor error. CANCELLED stays CANCELLED, with a message naming only the operation
 * (the executor's own names the host; it is kept as the cause). HOST_KEY_MISMATCH keeps its code
 * (operators must see it as such). Everything else (an unreachable hypervisor, a timeout, an SSH
 * key that cannot be used, which the executor reports as VALIDATION_FAILED naming the host) makes
 * the storage unavailable: transient ones are retried by the core, and none is a customer's
 * input error.
 */
export function executorFailure(error: unknown, what: string, where: string): InstanceImagesError {
  if (isInstanceImagesError(error, 'CANCELLED'))
    return new InstanceImagesError('CANCELLED', `Cancelled while trying to ${what}`, { cause: error });
  if (isInstanceImagesError(error, 'HOST_KEY_MISMATCH')) return error;
  if (isInstanceImagesError(error))
    return new InstanceImagesError('STORAGE_UNAVAILABLE', `Could not ${what} on ${where}: ${error.message}`, { cause: error });
  return new InstanceImagesError('STORAGE_UNAVAILABLE', `Could not ${what} on ${where}`, { cause: error });
}
