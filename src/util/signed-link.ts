/**
 * Signed download links: an HMAC-SHA256, keyed by a secret the host provides, over the purpose,
 * the image id, the owning account and the expiry. Verified in constant time. A link serves only
 * its purpose (an export download) for that image of that account until it expires.
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** What a signed link says. */
export interface SignedLinkFields {
  imageId: string;
  /** The owning account (`""` for a stock image). */
  accountId: string;
  /** Expiry, in whole seconds since the epoch. */
  expires: number;
}

/** The purpose every export link is signed for (a link of another purpose never verifies as one). */
const PURPOSE = 'instance-images/export-download/v1';

/** The base64url signature of `fields` under `secret`. */
export function signLink(secret: string, fields: SignedLinkFields): string {
  // Fields are joined by a newline, which ids cannot contain (no control characters).
  return createHmac('sha256', secret)
    .update([PURPOSE, fields.imageId, fields.accountId, String(fields.expires)].join('\n'))
    .digest('base64url');
}

/** Whether `signature` is the signature of `fields` under `secret` (constant-time compare). */
export function verifyLinkSignature(secret: string, fields: SignedLinkFields, signature: string): boolean {
  const expected = Buffer.from(signLink(secret, fields));
  const given = Buffer.from(signature);
  // Lengths are public (the signature's is fixed); equal-length buffers are compared in constant time.
  return given.length === expected.length && timingSafeEqual(given, expected);
}
