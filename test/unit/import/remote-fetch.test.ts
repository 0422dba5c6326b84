import { describe, expect, it } from 'vitest';
import { destinationRules } from '../../../src/import/address';
import { pinDestination } from '../../../src/import/download';
import { parseHeaderDump, resolveEntry } from '../../../src/import/remote-fetch';

describe('fetching on the hypervisor: the pieces the panel decides with', () => {
  it('reads the last response of a curl header dump', () => {
    const dump =
      'HTTP/1.1 302 Found\r\nLocation: /a\r\n\r\nHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nETag: "v1"\r\n\r\n';
    expect(parseHeaderDump(dump)).toEqual({
      status: 206,
      headers: new Map([
        ['content-range', 'bytes 5-9/10'],
        ['etag', '"v1"'],
      ]),
    });
    expect(parseHeaderDump('')).toBeNull();
  });

  it('pins curl to the address the rules allow, brackets IPv6, and refuses a host resolving only to refused addresses', async () => {
    const rules = destinationRules({ allow: ['127.0.0.2/32'] });
    const resolve = async (name: string) =>
      name === 'ok.test'
        ? [
            { address: '127.0.0.1', family: 4 },
            { address: '127.0.0.2', family: 4 },
          ]
        : [{ address: '10.0.0.1', family: 4 }];
    const pin = await pinDestination(new URL('http://ok.test:8080/x'), rules, resolve);
    expect(pin).toEqual({ host: 'ok.test', port: 8080, address: '127.0.0.2' });
    expect(resolveEntry(pin)).toBe('ok.test:8080:127.0.0.2');
    expect(resolveEntry({ host: '2001:db8::1', port: 443, address: '2001:db8::1' })).toBe('[2001:db8::1]:443:[2001:db8::1]');
    await expect(pinDestination(new URL('https://bad.test/x'), rules, resolve)).rejects.toMatchObject({
      code: 'DESTINATION_REFUSED',
      details: { category: 'private' },
    });
    await expect(pinDestination(new URL('http://169.254.169.254/'), rules, resolve)).rejects.toMatchObject({ code: 'DESTINATION_REFUSED' });
  });
});
