/**
 * Streams over real HTTP: task progress as Server-Sent Events during a capture, and the ISO upload
 * streamed to the storage driver with its size limit.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../support/fakes';
import { PROBE_DOWNLOAD_PATH, probeDownload } from '../../support/download-probe';
import { ADMIN, readSse, useExpressHarness, describeEachServer } from '../../support/express-harness';

describeEachServer((server) => {
  const harness = useExpressHarness(server);

  /** Fails with `message` if `promise` does not settle first (a deadlock guard, not a timing assertion). */
  function orDeadlock<T>(promise: Promise<T>, message: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const guard = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(message)), 10_000);
    });
    return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
  }

  interface RawAnswer {
    status: number;
    headers: IncomingMessage['headers'];
    body: string;
    chunksWritten: number;
  }

  /** PUTs a chunked body of `chunks` × `chunkBytes`, stopping as soon as the server answers. */
  function chunkedUpload(url: string, chunks: number, chunkBytes: number, headers: Record<string, string>): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      let written = 0;
      let answered = false;
      const req = httpRequest(url, { method: 'PUT', headers: { ...headers, 'transfer-encoding': 'chunked' } }, (res) => {
        answered = true;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, chunksWritten: written });
        });
      });
      req.on('error', (error) => {
        if (!answered) reject(error);
      });
      const writeNext = () => {
        while (!answered && written < chunks) {
          written++;
          if (!req.write(Buffer.alloc(chunkBytes, 0x41))) {
            req.once('drain', writeNext);
            return;
          }
        }
        if (!answered && written >= chunks) req.end();
      };
      writeNext();
    });
  }

  /** Sends only headers announcing `length` bytes, then waits for the answer. */
  function announceOnly(url: string, length: number, headers: Record<string, string>): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(url, { method: 'PUT', headers: { ...headers, 'content-length': String(length) } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, chunksWritten: 0 });
        });
      });
      req.on('error', reject);
      req.flushHeaders();
    });
  }

  describe('HTTP API: Server-Sent Events of a task', () => {
    it('delivers the current task, progress events and the finished event of a capture, then ends', async () => {
      const t = await harness();
      let release: () => void = () => undefined;
      t.world.captureGate = new Promise<void>((resolve) => (release = resolve));
      const created = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'streamed' } });
      const taskId = created.json.task.id as string;
      const other = await t.ii.images.createImage({ kind: 'customer', accountId: 'acct-bob' }, { instanceId: 'bob-1', name: 'bob' });

      const response = await fetch(`${t.baseUrl}/tasks/${taskId}/events`, { headers: { 'x-test-actor': 'customer:acct-alice' } });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(response.headers.get('cache-control')).toContain('no-cache');
      const events = readSse(response);
      // fetch resolved: the headers were sent, so the stream is subscribed. Now let the capture finish.
      release();
      const received = await orDeadlock(events, 'the event stream never ended');
      const names = received.map((e) => e.event);
      expect(names[0]).toBe('task');
      expect(names.at(-1)).toBe('task.finished');
      expect(names.filter((n) => n === 'task.finished')).toHaveLength(1);
      expect(names.filter((n) => n === 'task.progress').length).toBeGreaterThanOrEqual(1);
      const tasks = received.map(
        (e) =>
          JSON.parse(e.data) as {
            id: string;
            status: string;
            progress: { bytesDone: number; bytesTotal: number | null };
            updatedAt: string;
          },
      );
      expect(tasks.every((task) => task.id === taskId)).toBe(true);
      expect(tasks.at(-1)?.status).toBe('completed');
      const disk = t.world.domains.get('dom-web-1')?.disk.length;
      expect(tasks.some((task) => task.progress.bytesDone === disk && task.progress.bytesTotal === disk)).toBe(true);
      expect(received.map((e) => e.id)).toEqual(received.map((_e, i) => String(i + 1)));
      expect(tasks[0]?.updatedAt).toMatch(/Z$/);
      await t.ii.idle();
      expect(tasks.some((task) => task.id === other.task.id)).toBe(false);
    });

    it('a foreign task is 404 before any event; a missing one too', async () => {
      const t = await harness();
      const bob = await t.ii.images.createImage({ kind: 'customer', accountId: 'acct-bob' }, { instanceId: 'bob-1', name: 'bob' });
      const response = await fetch(`${t.baseUrl}/tasks/${bob.task.id}/events`, { headers: { 'x-test-actor': 'customer:acct-alice' } });
      expect(response.status).toBe(404);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await response.json()) as { code: string }).code).toBe('NOT_FOUND');
      await t.ii.idle();
      expect(t.ii.events.all.get('task.progress') ?? []).toHaveLength(0);
    });

    it('stops listening when the client goes away', async () => {
      const t = await harness({ sseHeartbeatMs: 10 });
      let release: () => void = () => undefined;
      t.world.captureGate = new Promise<void>((resolve) => (release = resolve));
      const created = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'abandoned' } });
      const controller = new AbortController();
      const response = await fetch(`${t.baseUrl}/tasks/${created.json.task.id}/events`, {
        headers: { 'x-test-actor': 'customer:acct-alice' },
        signal: controller.signal,
      });
      const first = await readSse(response, (events) => events.length >= 1);
      expect(first[0]?.event).toBe('task');
      expect(t.ii.events.all.get('task.progress')).toHaveLength(1);
      controller.abort();
      await orDeadlock(
        (async () => {
          while ((t.ii.events.all.get('task.progress') ?? []).length > 0) await new Promise((resolve) => setTimeout(resolve, 5));
        })(),
        'the listener was never removed',
      );
      release();
      await t.ii.idle();
    });
  });

  describe('HTTP API: streamed ISO upload', () => {
    it('streams the body to the storage driver: the driver sees bytes before the client has sent them all', async () => {
      const t = await harness({ maxIsoUploadBytes: 1024 * 1024 });
      let push: (chunk: Uint8Array | null) => void = () => undefined;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          push = (chunk) => (chunk ? controller.enqueue(chunk) : controller.close());
        },
      });
      const first = Buffer.alloc(32 * 1024, 1);
      const second = Buffer.alloc(16 * 1024, 2);
      const answer = fetch(`${t.baseUrl}/admin/isos/upload?name=Streamed&storageId=${t.probeStoreId}&fileKey=streamed.iso`, {
        method: 'PUT',
        headers: { 'x-test-actor': 'admin', 'content-type': 'application/octet-stream' },
        body,
        duplex: 'half',
      } as RequestInit);
      push(first);
      // If the router buffered the body, the driver would see nothing until the body ends: deadlock.
      await orDeadlock(t.probe.firstBytes, 'the driver got no bytes before the body ended: the upload is buffered');
      expect(t.probe.received).toBeLessThanOrEqual(first.length);
      push(second);
      push(null);
      const res = await answer;
      expect(res.status).toBe(201);
      const iso = (await res.json()) as { status: string; sizeBytes: number; sha256: string };
      expect(iso).toMatchObject({
        status: 'available',
        sizeBytes: first.length + second.length,
        sha256: sha256(Buffer.concat([first, second])),
      });
      expect(t.probe.received).toBe(first.length + second.length);
    });

    it('refuses a declared Content-Length over the limit with 413 before reading, creating nothing', async () => {
      const t = await harness({ maxIsoUploadBytes: 64 * 1024 });
      const answer = await announceOnly(
        `${t.baseUrl}/admin/isos/upload?name=Huge&storageId=${t.isoStoreId}&hypervisorId=hv-1&fileKey=huge.iso`,
        10 * 1024 * 1024 * 1024,
        { 'x-test-actor': 'admin', 'content-type': 'application/octet-stream' },
      );
      expect(answer.status).toBe(413);
      expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
      // Node adapters close the connection instead of draining the unread body; @hono/node-server
      // drains it itself (bounded in time and size) and then closes the socket.
      if (t.server !== 'hono') expect(answer.headers.connection).toBe('close');
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { limitBytes: 64 * 1024 } });
      expect((await t.ii.catalog.listIsos(ADMIN)).items).toEqual([]);
      expect([...t.world.files.keys()].filter((k) => k.includes('huge'))).toEqual([]);
    });

    it('cuts off a chunked body that grows past the limit: 413, no file, no available record', async () => {
      const t = await harness({ maxIsoUploadBytes: 64 * 1024 });
      const answer = await chunkedUpload(
        `${t.baseUrl}/admin/isos/upload?name=Growing&storageId=${t.isoStoreId}&hypervisorId=hv-1&fileKey=growing.iso`,
        4096,
        16 * 1024,
        { 'x-test-actor': 'admin', 'content-type': 'application/octet-stream' },
      );
      expect(answer.status).toBe(413);
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', status: 413 });
      // The server stopped reading long before the client's 64 MiB were sent.
      expect(answer.chunksWritten).toBeLessThan(4096);
      expect([...t.world.files.keys()].filter((k) => k.includes('growing'))).toEqual([]);
      const isos = (await t.ii.catalog.listIsos(ADMIN)).items;
      expect(isos.filter((iso) => iso.status === 'available')).toEqual([]);
      expect(isos.map((iso) => [iso.name, iso.status])).toEqual([['Growing', 'error']]);
      const tasks = (await t.ii.images.listTasks(ADMIN, { type: 'iso-upload' })).items;
      expect(tasks.map((task) => task.status)).toEqual(['failed']);
      // The server still serves after cutting a connection off.
      expect((await t.call('GET', '/admin/isos', { actor: ADMIN })).status).toBe(200);
    });

    it('a client that disconnects mid-upload leaves an ISO in error and no file; the server keeps serving', async () => {
      const t = await harness({ maxIsoUploadBytes: 1024 * 1024 });
      const req = httpRequest(`${t.baseUrl}/admin/isos/upload?name=Dropped&storageId=${t.probeStoreId}&fileKey=dropped.iso`, {
        method: 'PUT',
        headers: { 'x-test-actor': 'admin', 'content-type': 'application/octet-stream', 'content-length': String(512 * 1024) },
      });
      req.on('error', () => undefined);
      req.write(Buffer.alloc(16 * 1024, 3));
      await orDeadlock(t.probe.firstBytes, 'the driver never received the first bytes');
      req.destroy();
      await orDeadlock(
        (async () => {
          for (;;) {
            const isos = (await t.ii.catalog.listIsos(ADMIN)).items;
            if (isos.some((iso) => iso.status === 'error')) return;
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        })(),
        'the interrupted upload never ended in error',
      );
      expect((await t.ii.catalog.listIsos(ADMIN)).items.map((iso) => [iso.name, iso.status])).toEqual([['Dropped', 'error']]);
      expect([...t.world.files.keys()].filter((k) => k.includes('dropped'))).toEqual([]);
      expect((await t.call('GET', '/admin/isos', { actor: ADMIN })).status).toBe(200);
    });

    it('an upload within the limit without Content-Length (chunked) succeeds', async () => {
      const t = await harness({ maxIsoUploadBytes: 64 * 1024 });
      const answer = await chunkedUpload(
        `${t.baseUrl}/admin/isos/upload?name=Small&storageId=${t.isoStoreId}&hypervisorId=hv-1&fileKey=small.iso`,
        3,
        16 * 1024,
        { 'x-test-actor': 'admin', 'content-type': 'application/octet-stream' },
      );
      expect(answer.status).toBe(201);
      expect(JSON.parse(answer.body)).toMatchObject({
        status: 'available',
        sizeBytes: 48 * 1024,
        sha256: sha256(Buffer.alloc(48 * 1024, 0x41)),
      });
      expect(t.world.files.get('/hv-1/isos/small.iso')?.bytes.length).toBe(48 * 1024);
    });
  });
  describe('HTTP API: streamed download', () => {
    it('reads the file only as the client does, and destroys and aborts the storage read when the client goes away', async () => {
      const t = await harness();
      const probe = probeDownload(t);
      const controller = new AbortController();
      const response = await fetch(`${t.baseUrl}${PROBE_DOWNLOAD_PATH}`, { signal: controller.signal });
      expect([response.status, response.headers.get('content-length')]).toEqual([200, String(1024 ** 4)]);
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      let received = 0;
      while (received < 1024 * 1024) received += (await reader.read()).value?.length ?? 0;
      // A terabyte is announced; only what the client read (plus socket and stream buffers) was produced.
      expect(probe.produced * 64 * 1024).toBeLessThan(received + 64 * 1024 * 1024);
      controller.abort();
      await orDeadlock(
        (async () => {
          while (!probe.destroyed || !probe.signal?.aborted) await new Promise((resolve) => setTimeout(resolve, 5));
        })(),
        'the storage read was never stopped',
      );
      expect((await t.call('GET', '/images')).status).toBe(200);
    });
  });
});
