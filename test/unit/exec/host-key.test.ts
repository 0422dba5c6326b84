import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hostKeyFingerprint, hostKeyMatches, parseHostKeyPin } from '../../../drivers/exec/host-key';
import { isInstanceImagesError } from '../../../src/errors';

// A real ed25519 public key and the fingerprint `ssh-keygen -lf` prints for it.
const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKMPblHfNwR4jrRlxOSVRdlgdGg9RqqusLJrBgj6I3A6 hv-host';
const FINGERPRINT = 'SHA256:cVjirmhDNKINqxATfvabUehhvQatdd79TQjaEdqWMVM';
const BLOB = Buffer.from(PUBLIC_KEY.split(' ')[1] ?? '', 'base64');

describe('host key pins', () => {
  it('computes the OpenSSH SHA256 fingerprint', () => {
    expect(hostKeyFingerprint(BLOB)).toBe(FINGERPRINT);
  });

  it('accepts fingerprints, public key lines and known_hosts lines', () => {
    for (const pin of [
      FINGERPRINT,
      `${FINGERPRINT}=`,
      PUBLIC_KEY,
      `[10.0.0.5]:2222 ${PUBLIC_KEY}`,
      `|1|abc=|def= ${PUBLIC_KEY}`,
      `# comment\n\n${PUBLIC_KEY}\n`,
    ]) {
      expect(hostKeyMatches(parseHostKeyPin(pin), BLOB)).toBe(true);
    }
  });

  it('does not match another key', () => {
    const other = createHash('sha256').update('other').digest();
    expect(hostKeyMatches(parseHostKeyPin(PUBLIC_KEY), other)).toBe(false);
    expect(hostKeyMatches(parseHostKeyPin(FINGERPRINT), other)).toBe(false);
  });

  it('rejects pins from which no key can be read', () => {
    for (const pin of [
      '',
      'yes',
      'MD5:aa:bb',
      'ssh-ed25519 not-base64!',
      'ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIKMPblHfNwR4jrRlxOSVRdlgdGg9RqqusLJrBgj6I3A6',
    ]) {
      let caught: unknown;
      try {
        parseHostKeyPin(pin);
      } catch (error) {
        caught = error;
      }
      expect(isInstanceImagesError(caught, 'VALIDATION_FAILED')).toBe(true);
      expect((caught as { fields: Array<{ path: string }> }).fields[0]?.path).toBe('connection.hostKey');
    }
  });
});
