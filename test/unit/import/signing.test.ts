/** Signed export links: the signature covers image, account and expiry; any change, or another secret, fails it. */
import { describe, expect, it } from 'vitest';
import { signLink, verifyLinkSignature } from '../../../src/util/signed-link';

const secret = 'a-test-secret-that-is-long-enough-000';
const fields = { imageId: 'img-1', accountId: 'acct-1', expires: 2_000_000_000 };

describe('signed export links', () => {
  it('verifies its own signature', () => {
    expect(verifyLinkSignature(secret, fields, signLink(secret, fields))).toBe(true);
  });

  it('refuses a change of image, account or expiry, another secret, and forged or truncated signatures', () => {
    const signature = signLink(secret, fields);
    expect(verifyLinkSignature(secret, { ...fields, imageId: 'img-2' }, signature)).toBe(false);
    expect(verifyLinkSignature(secret, { ...fields, accountId: 'acct-2' }, signature)).toBe(false);
    expect(verifyLinkSignature(secret, { ...fields, expires: fields.expires + 1 }, signature)).toBe(false);
    expect(verifyLinkSignature(`${secret}x`, fields, signature)).toBe(false);
    expect(verifyLinkSignature(secret, fields, signature.slice(0, -1))).toBe(false);
    expect(verifyLinkSignature(secret, fields, '')).toBe(false);
    expect(verifyLinkSignature(secret, fields, `${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`)).toBe(false);
  });

  it('cannot be shifted between fields (a separator ids cannot contain)', () => {
    const a = signLink(secret, { imageId: 'img', accountId: '1acct', expires: 5 });
    const b = signLink(secret, { imageId: 'img1', accountId: 'acct', expires: 5 });
    expect(a).not.toBe(b);
  });
});
