/** The local executor's `openStreamLocal`: a plain connection to a unix socket on this machine. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { codeOf } from '../../support/errors';

describe('local executor: openStreamLocal (the chunked deploy side)', () => {
  let dir: string;
  let socket: string;
  const server = createServer((connection) => connection.pipe(connection));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ii-local-stream-'));
    socket = join(dir, 'echo.sock');
    await new Promise<void>((resolve) => server.listen(socket, resolve));
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('opens a byte stream to the socket', async () => {
    const executor = createLocalExecutor();
    const stream = await executor.openStreamLocal?.(socket);
    if (!stream) throw new Error('the local executor has no openStreamLocal');
    const echoed = new Promise<Buffer>((resolve) => stream.once('data', resolve));
    stream.write('ping');
    expect((await echoed).toString()).toBe('ping');
    stream.destroy();
  });

  it('a missing socket is COMMAND_FAILED naming it; an aborted signal is CANCELLED', async () => {
    const executor = createLocalExecutor();
    const missing = executor.openStreamLocal?.(join(dir, 'missing.sock')) ?? Promise.resolve();
    const error = await missing.catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'COMMAND_FAILED', message: expect.stringContaining('missing.sock') as unknown });
    expect(await codeOf(executor.openStreamLocal?.(socket, { signal: AbortSignal.abort() }) ?? Promise.resolve())).toBe('CANCELLED');
  });
});
