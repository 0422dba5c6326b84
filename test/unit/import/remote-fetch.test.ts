import { describe, expect, it } from 'vitest';
import { destinationRules } from '../../../src/import/address';
import { pinDestination } from '../../../src/import/download';
import { curlConfig, parseHeaderDump, resolveEntry } from '../../../src/import/remote-fetch';
import { requireTools } from '../../../src/import/remote-image';
import type { Executor } from '../../../src/ports/executor';

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

  it('refuses with FEATURE_DISABLED naming the program missing on the hypervisor, and passes each tool as its own argument', async () => {
    const seen: string[][] = [];
    const executor = {
      label: 'fake',
      run: async (argv: readonly string[]) => (seen.push([...argv]), { exitCode: 0, stdout: 'zstd\n', stderr: '' }),
    } as unknown as Executor;
    await expect(requireTools(executor, ['curl', 'zstd'], 'hv-1', new AbortController().signal, '/d/x.fetch-1')).rejects.toMatchObject({
      code: 'FEATURE_DISABLED',
      message: expect.stringMatching(/needs zstd/),
      details: { tool: 'zstd', hypervisorId: 'hv-1', option: 'imports.fetchOnHypervisor' },
    });
    expect(seen[0]?.slice(3)).toEqual(['sh', '/d/x.fetch-1', 'curl', 'zstd']);
  });

  it('names the URL in a curl config line, backslash and double quote escaped, and refuses a line break', () => {
    expect(curlConfig('http://a.test/x?sig=abc')).toBe('url = "http://a.test/x?sig=abc"');
    expect(curlConfig('http://a.test/a\\b"c')).toBe('url = "http://a.test/a\\\\b\\"c"');
    expect(() => curlConfig('http://a.test/x\nurl = "http://b.test/"')).toThrow(/line break/);
  });
});
