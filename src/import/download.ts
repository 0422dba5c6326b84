/**
 * The download of a URL import: plain GETs (no HEAD), http and https only, every connection made
 * to an address the destination rules allow — checked on the address the socket really connects
 * to (the DNS answer goes through our own `lookup`, so a rebinding resolver cannot swap in another
 * address after the check) — redirects bounded and each re-checked, a size limit, and a resume
 * with `Range` (and `If-Range`) after a dropped connection. A server that ignores the range is read
 * again from its start and the bytes already received are skipped, when it is provably the same
 * file (same ETag or Last-Modified, or neither both times).
 * @module
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { InstanceImagesError, isInstanceImagesError } from '../errors';
import { refusedAddress, type DestinationRules } from './address';

/** Resolves a host name to its addresses (the system resolver by default; tests inject one). */
export type ResolveHost = (hostname: string) => Promise<LookupAddress[]>;

/** Options of {@link downloadUrl}. */
export interface DownloadOptions {
  rules: DestinationRules;
  /** Redirects followed at most. */
  maxRedirects: number;
  /** The most bytes read from the server (the compressed size). */
  maxBytes: number;
  /** Reconnections after a dropped connection, in total. */
  maxResumes: number;
  /** A connection without a byte for this long is dropped (and resumed). */
  idleTimeoutMs: number;
  signal: AbortSignal;
  resolve?: ResolveHost;
  /** Told about each response (status, whether it resumed); for progress and tests. */
  onResponse?(info: { status: number; resumedAt: number; totalBytes: number | null }): void;
}

/** A DESTINATION_REFUSED error naming the host (never the path or query: they may carry tokens). */
function refused(host: string, why: string, details: Record<string, unknown> = {}): InstanceImagesError {
  return new InstanceImagesError('DESTINATION_REFUSED', `Imports may not connect to ${host}: ${why}`, { details });
}

/** A DOWNLOAD_FAILED error with its `reason`. @internal */
export function downloadFailed(message: string, reason: string, details: Record<string, unknown> = {}): InstanceImagesError {
  return new InstanceImagesError('DOWNLOAD_FAILED', message, { details: { reason, ...details } });
}

/** Parses and checks an import URL: http(s), no credentials, a host. @throws VALIDATION_FAILED. */
export function checkImportUrl(text: string, field = 'url'): URL {
  const invalid = (message: string) =>
    new InstanceImagesError('VALIDATION_FAILED', `The URL is not valid: ${message}`, { fields: [{ path: field, message }] });
  if (!URL.canParse(text)) throw invalid('it does not parse as a URL');
  const url = new URL(text);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('only http:// and https:// URLs can be imported');
  if (url.username !== '' || url.password !== '') throw invalid('it must not contain a user name or password');
  if (url.hostname === '') throw invalid('it has no host');
  return url;
}

/** The host of a URL as written, without brackets (an IPv6 literal). */
const bareHost = (url: URL): string => url.hostname.replace(/^\[|\]$/g, '');

/**
 * A `lookup` for sockets that answers only addresses the rules allow: the address the socket
 * connects to is the one checked here.
 */
function guardedLookup(rules: DestinationRules, resolve: ResolveHost) {
  return (
    hostname: string,
    options: { all?: boolean },
    callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    resolve(hostname).then(
      (addresses) => {
        const allowed = addresses.filter((a) => refusedAddress(a.address, rules) === null);
        if (allowed.length === 0) {
          const category = addresses.length > 0 ? refusedAddress(addresses[0]!.address, rules) : null;
          callback(refused(hostname, `it resolves to a ${category ?? 'refused'} address`, { category }), '', 0);
          return;
        }
        if (options.all) callback(null, allowed);
        else callback(null, allowed[0]!.address, allowed[0]!.family);
      },
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error)), '', 0),
    );
  };
}

const systemResolve: ResolveHost = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))),
  );

interface OpenedResponse {
  response: IncomingMessage;
  url: URL;
}

/** One GET with the guarded lookup; resolves with the response (redirects not followed). */
function get(url: URL, headers: Record<string, string>, options: DownloadOptions): Promise<IncomingMessage> {
  const literal = bareHost(url);
  const category = refusedAddress(literal, options.rules);
  // An IP literal is connected to without a lookup: judged here (a name that is no IP is judged at lookup).
  if (/^[\d.]+$|:/.test(literal) && category !== null) return Promise.reject(refused(literal, `it is a ${category} address`, { category }));
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, {
      method: 'GET',
      headers: { 'user-agent': 'instance-images-import', 'accept-encoding': 'identity', ...headers },
      lookup: guardedLookup(options.rules, options.resolve ?? systemResolve) as never,
      signal: options.signal,
      agent: false,
    });
    req.on('socket', (socket: Socket) => {
      socket.setTimeout(options.idleTimeoutMs, () => req.destroy(downloadFailed('The source server stopped sending', 'stalled')));
      socket.once('connect', () => {
        // Belt and braces: the address really connected to.
        const remote = socket.remoteAddress ?? '';
        const reason = refusedAddress(remote, options.rules);
        if (reason !== null) req.destroy(refused(url.hostname, `it connected to a ${reason} address`, { category: reason }));
      });
    });
    req.once('response', resolve);
    req.once('error', reject);
    req.end();
  });
}

/** A destination pinned to one address the rules allow: what a client elsewhere connects to. */
export interface PinnedDestination {
  /** The host of the URL as written (without brackets). */
  host: string;
  /** The port connected to (the scheme's default when the URL names none). */
  port: number;
  /** The allowed address the host resolved to (the host itself for an IP literal). */
  address: string;
}

/**
 * Resolves the URL's host and picks an address the rules allow, so that a client on another
 * machine (curl on a hypervisor, `--resolve`) connects to exactly the address checked here.
 * @throws DESTINATION_REFUSED (no allowed address), DOWNLOAD_FAILED (the host does not resolve).
 */
export async function pinDestination(url: URL, rules: DestinationRules, resolve: ResolveHost = systemResolve): Promise<PinnedDestination> {
  const host = bareHost(url);
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  if (/^[\d.]+$|:/.test(host)) {
    const category = refusedAddress(host, rules);
    if (category !== null) throw refused(host, `it is a ${category} address`, { category });
    return { host, port, address: host };
  }
  let addresses: LookupAddress[];
  try {
    addresses = await resolve(host);
  } catch (error) {
    throw wrapNetworkError(error, new AbortController().signal);
  }
  const allowed = addresses.find((a) => refusedAddress(a.address, rules) === null);
  if (!allowed) {
    const category = addresses.length > 0 ? refusedAddress(addresses[0]!.address, rules) : null;
    throw refused(host, `it resolves to a ${category ?? 'refused'} address`, { category });
  }
  return { host, port, address: allowed.address };
}

/**
 * The URL a redirect leads to, checked like the first one (http(s), no credentials), or a
 * DOWNLOAD_FAILED for a missing or unparsable Location or one redirect too many.
 */
export function redirectTarget(from: URL, status: number, location: string | undefined, hop: number, maxRedirects: number): URL {
  if (!location) throw downloadFailed(`The source server answered ${status} without a Location`, 'http-status', { status });
  if (hop >= maxRedirects) throw downloadFailed(`The source redirected more than ${maxRedirects} times`, 'too-many-redirects');
  if (!URL.canParse(location, from.href)) throw downloadFailed('The source redirected to a URL that does not parse', 'bad-redirect');
  const next = new URL(location, from);
  if (next.protocol !== 'http:' && next.protocol !== 'https:')
    throw refused(next.hostname || next.protocol, 'redirects may lead to http(s) only');
  if (next.username !== '' || next.password !== '') throw refused(next.hostname, 'a redirect may not carry credentials');
  return next;
}

/** The HTTP statuses of a redirect that is followed. */
export const REDIRECT_STATUSES: readonly number[] = [301, 302, 303, 307, 308];

/** GET with redirects followed (at most `maxRedirects`, each checked again). */
async function openFollowing(start: URL, headers: Record<string, string>, options: DownloadOptions): Promise<OpenedResponse> {
  let url = start;
  for (let hop = 0; ; hop++) {
    const response = await get(url, headers, options);
    const status = response.statusCode ?? 0;
    if (!REDIRECT_STATUSES.includes(status)) return { response, url };
    response.resume();
    url = redirectTarget(url, status, response.headers.location, hop, options.maxRedirects);
  }
}

/** The validator of a response for `If-Range`: a strong ETag, else Last-Modified. */
function validatorOf(response: IncomingMessage): { etag: string | null; lastModified: string | null } {
  const etag = response.headers.etag ?? null;
  return { etag: etag && !etag.startsWith('W/') ? etag : null, lastModified: response.headers['last-modified'] ?? null };
}

/** Errors of a dropped or stalled connection, after which a resume is tried. */
function isDrop(error: unknown): boolean {
  if (isInstanceImagesError(error)) return error.code === 'DOWNLOAD_FAILED' && error.details.reason === 'stalled';
  const code = (error as { code?: string }).code;
  return (
    ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET'].includes(code ?? '') ||
    (error instanceof Error && /aborted|socket hang up|premature close/i.test(error.message))
  );
}

/**
 * Downloads `url`, yielding its bytes in order exactly once, resuming after dropped connections.
 * @throws DESTINATION_REFUSED, DOWNLOAD_FAILED (HTTP status, too large, too many redirects or
 *   resumes, the file changed meanwhile), CANCELLED.
 */
export async function* downloadUrl(url: URL, options: DownloadOptions): AsyncGenerator<Buffer> {
  let received = 0;
  let current = url;
  let validator: { etag: string | null; lastModified: string | null } | null = null;
  let total: number | null = null;
  let resumes = 0;
  for (;;) {
    if (options.signal.aborted) throw new InstanceImagesError('CANCELLED', 'The import was cancelled');
    const resuming = received > 0;
    const headers: Record<string, string> = {};
    if (resuming) {
      headers.range = `bytes=${received}-`;
      const ifRange = validator?.etag ?? validator?.lastModified;
      if (ifRange) headers['if-range'] = ifRange;
    }
    let opened: OpenedResponse;
    try {
      opened = await openFollowing(current, headers, options);
    } catch (error) {
      if (resuming && isDrop(error) && resumes++ < options.maxResumes) continue;
      throw wrapNetworkError(error, options.signal);
    }
    const { response } = opened;
    current = opened.url;
    const status = response.statusCode ?? 0;
    let skip = 0;
    if (status === 416 && resuming) {
      // Nothing is left past what we have: complete when the server's length is exactly that (a first
      // answer's Content-Length promised more than the file holds).
      response.resume();
      const length = /^bytes \*\/(\d+)$/.exec(response.headers['content-range'] ?? '');
      if (length && Number(length[1]) === received) return;
      throw downloadFailed('The source server refused to continue the download', 'bad-range', { status });
    }
    if (status === 206 && resuming) {
      const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers['content-range'] ?? '');
      if (!range || Number(range[1]) !== received) {
        response.resume();
        throw downloadFailed('The source server answered the resume with a different range', 'bad-range');
      }
      // The full length as the range answer states it (a first answer's Content-Length may have lied).
      if (range[2] !== '*') total = Number(range[2]);
    } else if (status === 200) {
      const seen = validatorOf(response);
      if (resuming) {
        // The range was ignored (or the file changed): read from the start and skip what we have, if it is the same file.
        const same = validator !== null && seen.etag === validator.etag && seen.lastModified === validator.lastModified;
        if (!same) {
          response.resume();
          throw downloadFailed('The file at the URL changed during the download; import it again', 'source-changed');
        }
        skip = received;
      } else validator = seen;
      const length = Number(response.headers['content-length']);
      total = Number.isSafeInteger(length) ? length : null;
      if (total !== null && total > options.maxBytes) {
        response.resume();
        throw downloadFailed(`The file is ${total} bytes, more than the import limit of ${options.maxBytes}`, 'too-large', {
          limitBytes: options.maxBytes,
        });
      }
    } else {
      response.resume();
      throw downloadFailed(`The source server answered HTTP ${status}`, 'http-status', { status });
    }
    options.onResponse?.({ status, resumedAt: resuming ? received : 0, totalBytes: total });
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        let bytes = chunk;
        if (skip > 0) {
          const dropped = Math.min(skip, bytes.length);
          skip -= dropped;
          bytes = bytes.subarray(dropped);
          if (bytes.length === 0) continue;
        }
        received += bytes.length;
        if (received > options.maxBytes)
          throw downloadFailed(`The file is larger than the import limit of ${options.maxBytes} bytes`, 'too-large', {
            limitBytes: options.maxBytes,
          });
        yield bytes;
      }
      if (!response.complete) throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
      if (total !== null && received < total) throw Object.assign(new Error('premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
      return;
    } catch (error) {
      response.destroy();
      if (isDrop(error) && !options.signal.aborted && resumes++ < options.maxResumes) continue;
      throw wrapNetworkError(error, options.signal);
    }
  }
}

function wrapNetworkError(error: unknown, signal: AbortSignal): InstanceImagesError {
  if (signal.aborted) return new InstanceImagesError('CANCELLED', 'The import was cancelled', { cause: error });
  if (isInstanceImagesError(error)) return error;
  const code = (error as { code?: string }).code;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return downloadFailed('The host of the URL could not be resolved', 'dns', { code });
  return downloadFailed(`The download failed (${code ?? 'connection error'})`, 'network', { cause: code ?? null });
}
