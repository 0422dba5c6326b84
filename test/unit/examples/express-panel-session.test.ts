/**
 * The example panel models good host code: its session resolver validates what the client sent
 * (400 naming the header, 401 without a session) instead of letting a bad value become a 500.
 */
import { describe, expect, it } from 'vitest';
import { actorOf } from '../../../examples/express-panel/panel';
import { useExpressHarness } from '../../support/express-harness';

const harness = useExpressHarness();

describe('example panel: resolveActor', () => {
  it('a malformed x-account is 400 naming the header; none is 401; a good one works', async () => {
    const t = await harness({ resolveActor: actorOf });
    for (const account of ['a'.repeat(201), 'a'.repeat(65), 'acct alice', '../etc', 'ü']) {
      const res = await t.call('GET', '/images', {
        actor: null,
        headers: { 'x-account': encodeURIComponent(account) === account ? account : encodeURIComponent(account) },
      });
      expect({ account, status: res.status, code: res.json.code, fields: res.json.fields?.map((f: { path: string }) => f.path) }).toEqual({
        account,
        status: 400,
        code: 'VALIDATION_FAILED',
        fields: ['x-account'],
      });
    }
    const query = await t.call('GET', `/tasks?account=${'a'.repeat(300)}`, { actor: null });
    expect([query.status, query.json.fields?.[0]?.path]).toEqual([400, 'account']);
    expect((await t.call('GET', '/images', { actor: null })).status).toBe(401);
    expect((await t.call('GET', '/images', { actor: null, headers: { 'x-account': 'acct-alice' } })).status).toBe(200);
    expect(t.logged).toEqual([]);
  });
});
