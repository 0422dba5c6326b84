/** Destination rules of URL imports: every refused range, IPv6 and its embedded IPv4 forms, operator allow/deny. */
import { describe, expect, it } from 'vitest';
import { destinationRules, parseNetwork, refusedAddress } from '../../../src/import/address';

describe('import destination rules', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.254', 'cgnat'],
    ['169.254.169.254', 'link-local'],
    ['224.0.0.1', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['255.255.255.255', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fd12:3456::1', 'private'],
    ['ff02::1', 'multicast'],
    // IPv4-mapped, in both notations, and other forms that embed an IPv4 address
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['0:0:0:0:0:ffff:c0a8:0101', 'private'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['2002:7f00:0001::1', 'loopback'],
    ['not an address', 'reserved'],
  ])('refuses %s (%s)', (address, category) => {
    expect(refusedAddress(address)).toBe(category);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::8.8.8.8'])(
    'allows the public address %s',
    (address) => {
      expect(refusedAddress(address)).toBeNull();
    },
  );

  it('lets the operator allow a network (also through an IPv4-mapped form) and deny more, deny winning', () => {
    const rules = destinationRules({ allow: ['10.20.0.0/16', '127.0.0.2'], deny: ['8.8.8.0/24', '10.20.5.0/24'] });
    expect(refusedAddress('10.20.1.1', rules)).toBeNull();
    expect(refusedAddress('::ffff:10.20.1.1', rules)).toBeNull();
    expect(refusedAddress('127.0.0.2', rules)).toBeNull();
    expect(refusedAddress('127.0.0.1', rules)).toBe('loopback');
    expect(refusedAddress('10.21.0.1', rules)).toBe('private');
    expect(refusedAddress('8.8.8.8', rules)).toBe('denied');
    expect(refusedAddress('::ffff:8.8.8.8', rules)).toBe('denied');
    expect(refusedAddress('10.20.5.5', rules)).toBe('denied');
  });

  it('refuses malformed networks with a message naming them', () => {
    expect(() => parseNetwork('10.0.0.0/33')).toThrow(/prefix length/);
    expect(() => parseNetwork('example.com/8')).toThrow(/not an IP address/);
    expect(() => parseNetwork('10.0.0.0/8x')).toThrow(/prefix length/);
    expect(parseNetwork('fd00::/8').prefix).toBe(8);
  });
});
