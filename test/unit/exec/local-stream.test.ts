import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';

describe('local executor: openStreamLocal', () => {
  let dir: string;
  let server: Server;
  let socket: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ii-local-stream-'));
    socket = join(dir, 'echo.sock');
    server = createServer((connection) => connection.pipe(connection));
    await new Promise<void>((resolve) => server.listen(socket, resolve));
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('opens a duplex stream to a unix socket on this machine', async () => {
    const stream = await createLocalExecutor().openStreamLocal!(socket);
    const echoed = new Promise<string>((resolve) => stream.once('data', (data: Buffer) => resolve(data.toString())));
    stream.write('ping');
    expect(await echoed).toBe('ping');
    stream.destroy();
  });

  it('refuses a missing socket with COMMAND_FAILED and an aborted call with CANCELLED', async () => {
    const executor = createLocalExecutor();
    await expect(executor.openStreamLocal!(join(dir, 'missing.sock'))).rejects.toMatchObject({ code: 'COMMAND_FAILED' });
    await expect(executor.openStreamLocal!(socket, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'CANCELLED' });
  });
});
