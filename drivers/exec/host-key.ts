/**
 * Host key pins: the key a hypervisor must present, given as an OpenSSH fingerprint
 * (`SHA256:base64`) or as public key / known_hosts lines (`ssh-ed25519 AAAA...`).
 * Host keys are always verified; there is no "accept any" mode.
 * @module
 */
import { createHash } from 'node:crypto';
import { InstanceImagesError } from '../../src/errors';

/** A parsed host key pin. */
export interface HostKeyPin {
  /** Accepted `SHA256:` fingerprints (unpadded base64, as OpenSSH prints them). */
  fingerprints: string[];
}

/** The OpenSSH `SHA256:` fingerprint of a public key blob (the wire format of the key). */
export function hostKeyFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

const KEY_TYPE = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com|ssh-ed448)$/;

/**
 * Parses a pin: one or more lines, each a `SHA256:` fingerprint, a public key line
 * (`TYPE BASE64 [comment]`) or a known_hosts line (`HOSTS TYPE BASE64 [comment]`); any line may
 * match. Blank lines and `#` comments are ignored; keys of `@revoked` lines are never accepted and
 * `@cert-authority` lines are skipped (a CA key is not a host key).
 * @throws VALIDATION_FAILED (field `connection.hostKey`) when no key can be read from it.
 */
export function parseHostKeyPin(pin: string): HostKeyPin {
  const fingerprints = new Set<string>();
  const revoked = new Set<string>();
  for (const rawLine of pin.split(/\r?\n/)) {
    let line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    // known_hosts markers: a @revoked key must never be accepted, a @cert-authority key is not a host key.
    const marker = /^@(\S+)\s+/.exec(line);
    const into = marker?.[1] === 'revoked' ? revoked : marker ? null : fingerprints;
    if (marker) line = line.slice(marker[0].length);
    if (into === null) continue;
    const fingerprint = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(line);
    if (fingerprint) {
      into.add(`SHA256:${fingerprint[1]}`);
      continue;
    }
    const tokens = line.split(/\s+/);
    const typeIndex = tokens.findIndex((token) => KEY_TYPE.test(token));
    const blobText = typeIndex >= 0 ? tokens[typeIndex + 1] : undefined;
    if (blobText && /^[A-Za-z0-9+/]+={0,2}$/.test(blobText)) {
      const blob = Buffer.from(blobText, 'base64');
      // The blob starts with its own type name; a mismatch means a garbled line.
      const nameLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
      if (nameLength > 0 && blob.subarray(4, 4 + nameLength).toString('latin1') === tokens[typeIndex]) {
        into.add(hostKeyFingerprint(blob));
        continue;
      }
    }
  }
  for (const fingerprint of revoked) fingerprints.delete(fingerprint);
  if (fingerprints.size === 0) {
    throw new InstanceImagesError(
      'VALIDATION_FAILED',
      'The pinned host key is not valid: give an OpenSSH fingerprint (SHA256:...) or a public key line (ssh-ed25519 AAAA...)',
      {
        fields: [{ path: 'connection.hostKey', message: 'must be a SHA256: fingerprint or an OpenSSH public key / known_hosts line' }],
      },
    );
  }
  return { fingerprints: [...fingerprints] };
}

/** Whether the presented key blob matches the pin. */
export function hostKeyMatches(pin: HostKeyPin, keyBlob: Buffer): boolean {
  return pin.fingerprints.includes(hostKeyFingerprint(keyBlob));
}
