/**
 * Who is using the example panel, and the typed client that calls the API as them. The demo
 * session is a query parameter (`?account=acct-1` for a customer, `?admin=yes` for the operator);
 * a real panel uses its own login, and passes its credentials through the client's `headers`.
 * @module
 */
import { createImagesClient, type ImagesClient } from '../../../src/client';

/** The signed-in person of the demo. */
export type Session = { kind: 'customer'; accountId: string } | { kind: 'admin' };

/** What every page gets. */
export interface AppContext {
  session: Session;
  client: ImagesClient;
  /** The host panel's own endpoints (instances), with the same session headers. */
  host(path: string, init?: RequestInit): Promise<Response>;
}

/** The session of this page's URL (an account named in `?account=`, or the operator with `?admin=yes`). */
export function sessionFromUrl(url: URL): Session {
  if (url.searchParams.get('admin') === 'yes') return { kind: 'admin' };
  return { kind: 'customer', accountId: url.searchParams.get('account') || 'acct-demo' };
}

/** The session's headers (what the demo panel's `actorOf` reads). */
export function sessionHeaders(session: Session): Record<string, string> {
  return session.kind === 'admin' ? { 'x-admin': 'yes' } : { 'x-account': session.accountId };
}

/** The context of a session against the panel at `origin`. */
export function createContext(session: Session, origin: string): AppContext {
  const headers = sessionHeaders(session);
  return {
    session,
    client: createImagesClient({ baseUrl: `${origin}/api`, headers }),
    host: (path, init = {}) =>
      fetch(`${origin}${path}`, { ...init, headers: { ...headers, 'content-type': 'application/json', ...(init.headers ?? {}) } }),
  };
}
