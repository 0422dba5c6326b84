/**
 * A URL import's download run by curl on the hypervisor that writes the image
 * (`imports.fetchOnHypervisor`), so that no byte crosses the panel. The panel keeps every security
 * decision: it resolves the host and checks the address against the destination rules
 * ({@link pinDestination}), pins curl to that address (`--resolve`), lets curl follow no redirect
 * (`--max-redirs 0`) but reads each 3xx's Location itself, checks and pins it again (bounded like
 * the panel's own download), limits curl to http and https (`--proto =http,https`), enforces the
 * size limit (`--max-filesize` for an announced length, and `head -c` of limit + 1 bytes between
 * curl and the file, which ends curl as soon as the limit is passed, announced length or not),
 * and resumes a dropped download with a Range (`-C`, and `If-Range` with the
 * first answer's validator). Every argument reaches the remote shell as a quoted positional
 * parameter of a fixed script (the executor quotes argv with the one quoting function), except
 * the URL: it goes to curl on stdin as a config file, so it never shows in a process list there.
 * The download runs in a process group of its own (`setsid`) whose id is kept in the work
 * directory, so that a cancel or a failure kills curl and everything it feeds, not only the shell.
 * @module
 */
import { InstanceImagesError, isInstanceImagesError } from '../errors';
import type { Executor } from '../ports/executor';
import type { DestinationRules } from './address';
import { DETECT_HEAD_BYTES } from './format';
import { downloadFailed, pinDestination, redirectTarget, REDIRECT_STATUSES, type ResolveHost } from './download';

/** Options of {@link fetchOnHypervisor}. */
export interface RemoteFetchOptions {
  rules: DestinationRules;
  maxRedirects: number;
  /** The most bytes read from the server (the compressed size). */
  maxBytes: number;
  maxResumes: number;
  idleTimeoutMs: number;
  resolve?: ResolveHost;
  signal: AbortSignal;
  /** Bytes on the hypervisor so far, and the full length when the server said it. */
  onDownloaded?(bytes: number, total: number | null): void;
}

/**
 * A shell function `hash256`: the sha256 of stdin, first field of its output. `openssl dgst`
 * where installed (it uses the CPU's SHA instructions: about 3× `sha256sum` here), else `sha256sum`.
 */
export const HASH_FUNCTION = `hash256() { if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; else sha256sum; fi; }`;

/**
 * A shell function `presync FILE`: when the file is a qcow2 (its first bytes `QFI`), starts its
 * fsync in the background, its pid in `s` (empty otherwise), to run beside the hash that reads it.
 * A clean qcow2 is kept as fetched, so the fsync its publish does then finds little left to write;
 * anything else is converted or decompressed into another file, and its pages need never be
 * written. The publish's own fsync decides durability: a failure here is ignored.
 */
export const PRESYNC_FUNCTION = `presync() { s=; [ "$(head -c 3 -- "$1")" != QFI ] || { sync -- "$1" 2>/dev/null & s=$!; }; }`;

/** The file of the work directory the download goes to. */
export const DOWNLOAD_FILE = 'download';

/**
 * One request: `$1` the work directory, `$2` the `--resolve` pin, `$3` the byte limit, `$4` the
 * idle timeout (s), `$5` an If-Range validator or empty, `$6` `reset` to start the file anew; on
 * stdin one line, the curl config naming the URL ({@link curlConfig}), handed on to curl's
 * `-K -` so that the URL (a query token included) is in no process's argv on the hypervisor.
 *
 * curl writes the file itself (`-o`; a resume appends to it); once curl ended well, the whole file
 * is hashed where it lies (in the page cache), beside the fsync of a qcow2 ({@link PRESYNC_FUNCTION}):
 * `sha HEX` is printed only then. Measured here (1 GiB over loopback, four alternating runs):
 * `curl -o` 1.2–1.8 s against 2.4–3.1 s for `curl | dd` (the extra pipe costs a copy of every byte
 * and a context switch per 64 KiB), and `curl | dd` with a hash afterwards took about 60 % of the
 * time of `curl | head -c | tee | hash`. Each exit status is kept in a file and checked (dash has
 * no pipefail).
 *
 * The size limit holds whether or not the server announced a length (`--max-filesize` judges only
 * an announced one): curl runs under a file size limit (`ulimit -f`, in 512-byte blocks: limit + 1
 * bytes rounded up, 64 KiB at least for its header dump) with SIGXFSZ ignored, so a write past it
 * fails (EFBIG) and curl exits (23) at once, the file holding more than the limit (the caller
 * judges the limit by the size); a byte count while curl runs kills it too once the file passes
 * the limit (a shell whose `ulimit -f` counts in KiB allows twice as much).
 *
 * Prints the file's size while curl runs (five times a second), then `rc N` (curl's exit code; 63
 * when stopped at the limit, 23 when the file could not be written or passed the limit),
 * maybe `sha HEX`, `head BASE64` (the file's first bytes, for the compression and format
 * detection), then `headers` and curl's header dump. The caller judges the limit by the size.
 */
const FETCH_SCRIPT = `set -u
${HASH_FUNCTION}
${PRESYNC_FUNCTION}
d=$1; f="$d/${DOWNLOAD_FILE}"; max=$3; ir=$5
IFS= read -r cfg || :
echo $$ > "$d/pid"
[ "$6" != reset ] && [ -e "$f" ] || : > "$f"
off=$(stat -c %s -- "$f")
rm -f -- "$d/headers" "$d/curl.pid" "$d/curl.rc"
set -- curl -sS -K - --proto =http,https --max-redirs 0 --resolve "$2" -D "$d/headers" \\
  -A instance-images-import -H 'Accept-Encoding: identity' --connect-timeout "$4" --speed-limit 1 --speed-time "$4" --max-filesize "$3"
[ -z "$ir" ] || set -- "$@" -H "If-Range: $ir"
# curl reads the URL from a pipe (printf is a builtin: no argv) and holds none of the script's
# descriptors: a killed script's channel closes at once.
# Past the limit (in 512-byte blocks), curl's next write fails (EFBIG: exit 23), however the server sends.
[ "$off" -eq 0 ] || set -- "$@" -C "$off"
b=$(( (max + 512) / 512 )); [ "$b" -ge 128 ] || b=128
{ printf '%s\\n' "$cfg" | ( trap '' XFSZ; ulimit -f "$b" && exec "$@" -o "$f" ) 2>"$d/stderr" & echo $! > "$d/curl.pid"; wait $!; echo $? > "$d/curl.rc"; } </dev/null >/dev/null &
p=$!; over=0
while kill -0 "$p" 2>/dev/null; do
  n=$(stat -c %s -- "$f"); echo "$n"
  if [ "$n" -gt "$max" ] && read -r c 2>/dev/null < "$d/curl.pid"; then kill -9 "$c" 2>/dev/null; over=1; fi
  sleep 0.2
done
wait "$p"
read -r rc 2>/dev/null < "$d/curl.rc" || rc=255
[ "$over" = 0 ] || rc=63
stat -c %s -- "$f"
echo "rc $rc"
if [ "$rc" = 0 ]; then
  presync "$f"
  if h=$(hash256 < "$f") && [ -n "$h" ]; then echo "sha \${h%% *}"; fi
  [ -z "$s" ] || wait "$s"
fi
rm -f -- "$d/pid"
printf 'head '; head -c ${DETECT_HEAD_BYTES} -- "$f" | base64 -w0; echo
echo headers
head -c 65536 -- "$d/headers" 2>/dev/null || true`;

/**
 * The curl config file (read by `curl -K -`) that names `url`: a double-quoted value, backslash
 * and double quote escaped as curl's config syntax wants; refuses a line break (a URL has none:
 * `URL.href` percent-encodes them).
 */
export function curlConfig(url: string): string {
  if (url.includes('\n') || url.includes('\r') || url.includes('\u0000'))
    throw new InstanceImagesError('VALIDATION_FAILED', 'The URL contains a line break');
  return `url = "${url.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * Kills what still runs of a download or a decompression in the work directory `$1` (its process
 * group, whose id the script left in `pid` and removes when it ends by itself), then removes the
 * directory. (`kill -9 -PGID`: dash's kill takes no `--`.)
 */
export const CLEANUP_SCRIPT = `p=$(cat -- "$1/pid" 2>/dev/null || true)
case $p in ''|*[!0-9]*) ;; *) kill -9 "-$p" 2>/dev/null || true ;; esac
rm -rf -- "$1"`;

/** curl exit codes of a dropped or stalled connection, after which the download resumes. */
const DROPPED = new Set([16, 18, 28, 52, 55, 56, 92]);
/** curl: the file is larger than `--max-filesize`. */
const TOO_LARGE = 63;
/** curl: the server answered a range request with the whole file. */
const RANGE_IGNORED = 33;

/** What {@link fetchOnHypervisor} downloaded. */
export interface RemoteDownload {
  bytes: number;
  /** The whole file's sha256, hashed on the hypervisor once the last request ended well; null when it was not (the caller hashes the file). */
  sha256: string | null;
  /** The file's first bytes (up to `DETECT_HEAD_BYTES`), read with the last request; null when not printed. */
  head: Buffer | null;
}

/** The last response in a `curl -D` header dump. */
export interface DumpedResponse {
  status: number;
  headers: Map<string, string>;
}

/** Parses the last response of a header dump (lower-case names; the last of a repeated header wins). */
export function parseHeaderDump(text: string): DumpedResponse | null {
  const blocks = text.split(/\r?\n\r?\n/).filter((block) => /^HTTP\/\S+ \d{3}/.test(block.trim()));
  const last = blocks.at(-1)?.trim();
  if (!last) return null;
  const [statusLine, ...lines] = last.split(/\r?\n/);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(/^HTTP\/\S+ (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0), headers };
}

/** The `--resolve` entry of a pinned destination (an IPv6 address in brackets). */
export function resolveEntry(pin: { host: string; port: number; address: string }): string {
  const address = pin.address.includes(':') ? `[${pin.address}]` : pin.address;
  const host = pin.host.includes(':') ? `[${pin.host}]` : pin.host;
  return `${host}:${pin.port}:${address}`;
}

interface HopOutcome {
  size: number;
  rc: number;
  /** The sha256 of the whole file, hashed once curl ended well and the file was written in full. */
  sha256: string | null;
  head: Buffer | null;
  response: DumpedResponse | null;
}

/** Runs {@link FETCH_SCRIPT} once, reporting the size as it grows. */
async function runHop(
  executor: Executor,
  dir: string,
  url: URL,
  args: string[],
  options: RemoteFetchOptions,
  total: number | null,
): Promise<HopOutcome> {
  const started = await executor.stream(['setsid', '-w', 'sh', '-c', FETCH_SCRIPT, 'sh', dir, ...args], {
    signal: options.signal,
    stdin: `${curlConfig(url.href)}\n`,
  });
  let size = 0;
  let rc = 255;
  let sha256: string | null = null;
  let head: Buffer | null = null;
  let pending = '';
  let dump: string | null = null;
  started.stdout.setEncoding('utf8');
  for await (const text of started.stdout as AsyncIterable<string>) {
    if (dump !== null) {
      dump += text;
      continue;
    }
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const [index, line] of lines.entries()) {
      if (line === 'headers') {
        dump = [...lines.slice(index + 1), pending].join('\n');
        break;
      }
      const code = /^rc (\d+)$/.exec(line);
      const hash = /^sha ([0-9a-f]{64})$/.exec(line);
      if (code) rc = Number(code[1]);
      else if (hash) sha256 = hash[1] ?? null;
      else if (line.startsWith('head ')) head = Buffer.from(line.slice(5), 'base64');
      else if (/^\d+$/.test(line)) {
        size = Number(line);
        options.onDownloaded?.(size, total);
      }
    }
  }
  const done = await started.done;
  if (done.exitCode !== 0)
    throw new InstanceImagesError('COMMAND_FAILED', `The download on the hypervisor failed: ${done.stderr.trim().slice(0, 300)}`);
  return { size, rc, sha256, head, response: dump === null ? null : parseHeaderDump(dump) };
}

const validatorOf = (response: DumpedResponse) => {
  const etag = response.headers.get('etag') ?? null;
  return { etag: etag && !etag.startsWith('W/') ? etag : null, lastModified: response.headers.get('last-modified') ?? null };
};

function tooLarge(maxBytes: number): InstanceImagesError {
  return downloadFailed(`The file is larger than the import limit of ${maxBytes} bytes`, 'too-large', { limitBytes: maxBytes });
}

/** A number from a header, or null. */
function lengthOf(value: string | undefined): number | null {
  const length = Number(value);
  return value !== undefined && Number.isSafeInteger(length) ? length : null;
}

/**
 * Downloads `url` into `dir/download` on the hypervisor (`dir` exists, made by the caller, who
 * removes it with {@link CLEANUP_SCRIPT} whatever happens). Returns the bytes downloaded, and
 * their sha256 when the last request ended well (the file is hashed on the hypervisor, resumed or
 * not); null otherwise (a resume answered 416: nothing was left to send).
 * @throws DESTINATION_REFUSED (checked before anything runs on the hypervisor, and for every
 *   redirect), DOWNLOAD_FAILED (HTTP status, too large, too many redirects or resumes, the file
 *   changed meanwhile, a network error), CANCELLED, COMMAND_FAILED, HYPERVISOR_UNREACHABLE.
 */
export async function fetchOnHypervisor(executor: Executor, dir: string, url: URL, options: RemoteFetchOptions): Promise<RemoteDownload> {
  let current = url;
  let hops = 0;
  let resumes = 0;
  let validator: { etag: string | null; lastModified: string | null } | null = null;
  let total: number | null = null;
  let reset = true;
  const idleSeconds = String(Math.max(1, Math.ceil(options.idleTimeoutMs / 1000)));
  const cancelled = () => new InstanceImagesError('CANCELLED', 'The import was cancelled');
  try {
    for (;;) {
      if (options.signal.aborted) throw cancelled();
      const pin = await pinDestination(current, options.rules, options.resolve);
      const ifRange = reset ? '' : (validator?.etag ?? validator?.lastModified ?? '');
      const hop = await runHop(
        executor,
        dir,
        current,
        [resolveEntry(pin), String(options.maxBytes), idleSeconds, ifRange, reset ? 'reset' : ''],
        options,
        total,
      );
      const resuming = !reset;
      reset = false;
      if (hop.size > options.maxBytes || hop.rc === TOO_LARGE) throw tooLarge(options.maxBytes);
      const response = hop.response;
      const status = response?.status ?? 0;
      if (response && REDIRECT_STATUSES.includes(status) && !resuming) {
        current = redirectTarget(current, status, response.headers.get('location'), hops++, options.maxRedirects);
        reset = true;
        continue;
      }
      if (response && (status === 200 || status === 206)) {
        if (status === 200 && !resuming) {
          validator = validatorOf(response);
          total = lengthOf(response.headers.get('content-length'));
          if (total !== null && total > options.maxBytes) throw tooLarge(options.maxBytes);
        }
        if (status === 206) {
          const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
          if (!range) throw downloadFailed('The source server answered the resume with a different range', 'bad-range');
          if (range[2] !== '*') total = Number(range[2]);
        }
        if (resuming && (status === 200 || hop.rc === RANGE_IGNORED)) {
          // The range was ignored: read again from the start when it is provably the same file.
          const seen = validatorOf(response);
          const same = validator !== null && seen.etag === validator.etag && seen.lastModified === validator.lastModified;
          if (!same) throw downloadFailed('The file at the URL changed during the download; import it again', 'source-changed');
          if (resumes++ >= options.maxResumes) throw downloadFailed('The download was interrupted too often', 'too-many-resumes');
          reset = true;
          continue;
        }
        const complete = hop.rc === 0 && (total === null || hop.size >= total);
        if (complete) return { bytes: hop.size, sha256: hop.sha256, head: hop.head };
      } else if (response && status === 416 && resuming) {
        const length = /^bytes \*\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
        if (length && Number(length[1]) === hop.size) return { bytes: hop.size, sha256: null, head: hop.head };
        throw downloadFailed('The source server refused to continue the download', 'bad-range', { status });
      } else if (response && status !== 0 && (hop.rc === 0 || !DROPPED.has(hop.rc))) {
        throw downloadFailed(`The source server answered HTTP ${status}`, 'http-status', { status });
      }
      // A dropped or stalled connection (or a body shorter than announced): resume when bytes came.
      if (hop.size > 0 && (hop.rc === 0 || DROPPED.has(hop.rc)) && resumes++ < options.maxResumes) continue;
      if (hop.rc === 28) throw downloadFailed('The source server stopped sending', 'stalled');
      if (hop.rc === 6) throw downloadFailed('The host of the URL could not be resolved', 'dns', { code: hop.rc });
      if (hop.size > 0 && resumes > options.maxResumes) throw downloadFailed('The download was interrupted too often', 'too-many-resumes');
      throw downloadFailed(`The download failed (curl exit code ${hop.rc})`, 'network', { cause: `curl-${hop.rc}` });
    }
  } catch (error) {
    if (options.signal.aborted && !(isInstanceImagesError(error) && error.code === 'CANCELLED')) throw cancelled();
    throw error;
  }
}
