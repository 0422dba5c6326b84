import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hostKeyFingerprint, hostKeyMatches, parseHostKeyPin } from '../../../drivers/exec/host-key';

/** The SSH wire blob of a fresh ed25519 public key and its `ssh-ed25519 BASE64` line. */
function ed25519Line(): { blob: Buffer; line: string } {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const name = Buffer.from('ssh-ed25519');
  const blob = Buffer.concat([Buffer.from([0, 0, 0, name.length]), name, Buffer.from([0, 0, 0, 32]), raw]);
  return { blob, line: `ssh-ed25519 ${blob.toString('base64')}` };
}

describe('host key pins from known_hosts marker lines', () => {
  it('never accepts a key from a @revoked line (nor a CA key from @cert-authority)', () => {
    const good = ed25519Line();
    const revoked = ed25519Line();
    const ca = ed25519Line();
    const pin = parseHostKeyPin([`hv1 ${good.line}`, `@revoked hv1 ${revoked.line}`, `@cert-authority *.example ${ca.line}`].join('\n'));
    expect(pin.fingerprints).toEqual([hostKeyFingerprint(good.blob)]);
    expect(hostKeyMatches(pin, good.blob)).toBe(true);
    expect(hostKeyMatches(pin, revoked.blob)).toBe(false);
    expect(hostKeyMatches(pin, ca.blob)).toBe(false);
  });

  it('a pin made only of @revoked lines is not valid', () => {
    expect(() => parseHostKeyPin(`@revoked * ${ed25519Line().line}`)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });
});
