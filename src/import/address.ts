/**
 * Destination rules of URL imports: which IP addresses a download may connect to. By default
 * nothing inside the panel's own network is reachable: loopback, private, link-local, CGNAT,
 * multicast, unspecified, reserved and documentation ranges are refused, in IPv4 and IPv6, and an
 * IPv6 address that embeds an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible, NAT64,
 * 6to4) is judged by the IPv4 address inside. The operator can allow networks (e.g. a mirror on a
 * private range) and deny more. Pure functions: no I/O.
 * @module
 */
import { isIP } from 'node:net';

/** Why an address is refused (stable names, shown in errors' details). */
export type AddressCategory =
  'unspecified' | 'loopback' | 'private' | 'link-local' | 'cgnat' | 'multicast' | 'reserved' | 'documentation' | 'denied';

/** An address as bytes (4 for IPv4, 16 for IPv6). */
/** The bytes of an IPv4 (4) or IPv6 (16) address. */
export type AddressBytes = Uint8Array;

/** A network: bytes of its address and a prefix length. */
export interface Network {
  bytes: AddressBytes;
  prefix: number;
}

function parseIPv4(text: string): AddressBytes | null {
  if (isIP(text) !== 4) return null;
  return Uint8Array.from(text.split('.').map(Number));
}

function parseIPv6(text: string): AddressBytes | null {
  const bare = text.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  if (isIP(bare) !== 6) return null;
  let head = bare;
  let tail4: AddressBytes | null = null;
  const lastColon = bare.lastIndexOf(':');
  if (bare.slice(lastColon + 1).includes('.')) {
    tail4 = parseIPv4(bare.slice(lastColon + 1));
    if (!tail4) return null;
    head = `${bare.slice(0, lastColon + 1)}0:0`;
  }
  const [left = '', right] = head.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const l = groups(left);
  const r = right === undefined ? [] : groups(right);
  const words = right === undefined ? l : [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  if (words.length !== 8) return null;
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[i * 2] = word >> 8;
    bytes[i * 2 + 1] = word & 0xff;
  });
  if (tail4) bytes.set(tail4, 12);
  return bytes;
}

/** Parses an IPv4 or IPv6 address (brackets and a zone id are allowed on IPv6); null when it is none. */
export function parseAddress(text: string): AddressBytes | null {
  return parseIPv4(text) ?? parseIPv6(text);
}

/**
 * Parses a network in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address is a single host.
 * @throws Error naming the problem (the caller turns it into VALIDATION_FAILED).
 */
export function parseNetwork(text: string): Network {
  const [address = '', prefixText] = text.trim().split('/');
  const bytes = parseAddress(address);
  if (!bytes) throw new Error(`${JSON.stringify(text)} is not an IP address or network`);
  const max = bytes.length * 8;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && !/^\d+$/.test(prefixText)))
    throw new Error(`${JSON.stringify(text)} has a prefix length outside 0-${max}`);
  return { bytes, prefix };
}

/** Whether `address` lies in `network` (same family only). */
export function inNetwork(address: AddressBytes, network: Network): boolean {
  if (address.length !== network.bytes.length) return false;
  const full = Math.floor(network.prefix / 8);
  for (let i = 0; i < full; i++) if (address[i] !== network.bytes[i]) return false;
  const rest = network.prefix % 8;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((address[full] ?? 0) & mask) === ((network.bytes[full] ?? 0) & mask);
}

const net = (text: string): Network => parseNetwork(text);

/** IPv4 ranges refused by default. */
const IPV4_RULES: ReadonlyArray<readonly [Network, AddressCategory]> = [
  [net('0.0.0.0/8'), 'unspecified'],
  [net('127.0.0.0/8'), 'loopback'],
  [net('10.0.0.0/8'), 'private'],
  [net('172.16.0.0/12'), 'private'],
  [net('192.168.0.0/16'), 'private'],
  [net('100.64.0.0/10'), 'cgnat'],
  [net('169.254.0.0/16'), 'link-local'],
  [net('224.0.0.0/4'), 'multicast'],
  [net('240.0.0.0/4'), 'reserved'],
  [net('192.0.0.0/24'), 'reserved'],
  [net('198.18.0.0/15'), 'reserved'],
  [net('192.0.2.0/24'), 'documentation'],
  [net('198.51.100.0/24'), 'documentation'],
  [net('203.0.113.0/24'), 'documentation'],
];

/** IPv6 ranges refused by default (embedded IPv4 forms are judged separately, below). */
const IPV6_RULES: ReadonlyArray<readonly [Network, AddressCategory]> = [
  [net('::/128'), 'unspecified'],
  [net('::1/128'), 'loopback'],
  [net('fe80::/10'), 'link-local'],
  [net('fec0::/10'), 'private'],
  [net('fc00::/7'), 'private'],
  [net('ff00::/8'), 'multicast'],
  [net('100::/64'), 'reserved'],
  [net('2001::/32'), 'reserved'],
  [net('2001:db8::/32'), 'documentation'],
];

/**
 * The IPv4 address an IPv6 address stands for, if any: IPv4-mapped (`::ffff:0:0/96`),
 * IPv4-compatible (`::/96`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`).
 */
export function embeddedIPv4(address: AddressBytes): AddressBytes | null {
  if (address.length !== 16) return null;
  const zero = (from: number, to: number) => address.slice(from, to).every((b) => b === 0);
  if (zero(0, 10) && address[10] === 0xff && address[11] === 0xff) return address.slice(12);
  if (zero(0, 12) && !zero(12, 16) && !(zero(12, 15) && address[15] === 1)) return address.slice(12);
  if (address[0] === 0x00 && address[1] === 0x64 && address[2] === 0xff && address[3] === 0x9b && zero(4, 12)) return address.slice(12);
  if (address[0] === 0x20 && address[1] === 0x02) return address.slice(2, 6);
  return null;
}

/** The operator's destination rules, parsed. */
export interface DestinationRules {
  /** Networks reachable even though the defaults refuse them. */
  allow: readonly Network[];
  /** Networks refused besides the defaults (they win over `allow`). */
  deny: readonly Network[];
}

/** Parses the operator's rules. @throws Error naming the bad entry. */
export function destinationRules(input: { allow?: readonly string[]; deny?: readonly string[] } = {}): DestinationRules {
  return { allow: (input.allow ?? []).map(parseNetwork), deny: (input.deny ?? []).map(parseNetwork) };
}

/** The category of a built-in refusal of `bytes`, or null when the defaults let it through. */
function defaultCategory(bytes: AddressBytes): AddressCategory | null {
  const rules = bytes.length === 4 ? IPV4_RULES : IPV6_RULES;
  for (const [network, category] of rules) if (inNetwork(bytes, network)) return category;
  const inner = embeddedIPv4(bytes);
  return inner ? defaultCategory(inner) : null;
}

/**
 * Why a download may not connect to `address`, or null when it may. An operator's deny entry wins
 * over everything; an allow entry (matching the address or, for an embedded IPv4 form, the IPv4
 * address inside) lifts a default refusal. Text that is no IP address is refused (`reserved`).
 */
export function refusedAddress(address: string, rules: DestinationRules = { allow: [], deny: [] }): AddressCategory | null {
  const bytes = parseAddress(address);
  if (!bytes) return 'reserved';
  const inner = embeddedIPv4(bytes);
  const matches = (list: readonly Network[]) => list.some((n) => inNetwork(bytes, n) || (inner !== null && inNetwork(inner, n)));
  if (matches(rules.deny)) return 'denied';
  const category = defaultCategory(bytes);
  if (category === null) return null;
  return matches(rules.allow) ? null : category;
}
