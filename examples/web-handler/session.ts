/**
 * The example host's "session", read from a web `Request`: `x-admin: yes` is an operator,
 * `x-account: <accountId>` (or `?account=` on an EventSource request, which cannot send headers)
 * a customer. A real panel resolves the actor from its own login session; like here, it validates
 * what the client sent (400 naming the field) and answers `null` (401) without a session.
 */
import { InstanceImagesError, type Actor } from '../../src';

const ACCOUNT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Who is calling, from the request's headers or its `account` query parameter. */
export function actorFromRequest(request: Request): Actor | null {
  if (request.headers.get('x-admin') === 'yes') return { kind: 'admin', userId: 'demo-operator' };
  const header = request.headers.get('x-account');
  const [source, account] = header !== null ? ['x-account', header] : ['account', new URL(request.url).searchParams.get('account')];
  if (account === null || account === '') return null;
  if (!ACCOUNT_ID.test(account)) {
    const message = 'must be an account id: 1–64 letters, digits, ".", "_" or "-"';
    throw new InstanceImagesError('VALIDATION_FAILED', `The ${source} ${message}`, { fields: [{ path: source, message }] });
  }
  return { kind: 'customer', accountId: account };
}
