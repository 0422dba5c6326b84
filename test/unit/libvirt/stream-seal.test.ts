/**
 * Sealing a stream output (one remote script: the size line, the bytes through `tee` into `openssl
 * dgst`, `qemu-img info` and `check` beside the read), against a fake `qemu-img` on PATH whose
 * check waits for a go-ahead file, so the test controls when it finishes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import type { Run } from '../../../drivers/hypervisor/libvirt/capture-run';
import { HostCommands } from '../../../drivers/hypervisor/libvirt/commands';
import { streamOut } from '../../../drivers/hypervisor/libvirt/seal';

const VIRTUAL = 64 * 1024 * 1024;

// qemu-img info|check ... FILE: info prints $FAKE/info; check writes $FAKE/check-started, waits for
// $FAKE/go, prints $FAKE/check-json, writes $FAKE/checked and exits with $FAKE/check-exit.
const FAKE_QEMU_IMG = `#!/bin/sh
case $1 in
  info) cat "$FAKE/info" ;;
  check)
    : >"$FAKE/check-started"
    while [ ! -f "$FAKE/go" ]; do sleep 0.01; done
    cat "$FAKE/check-json"
    : >"$FAKE/checked"
    exit "$(cat "$FAKE/check-exit")" ;;
esac
`;

describe('streamOut (a stream output sealed while it streams)', () => {
  let root: string;
  let fake: string;
  let file: string;
  let bytes: Buffer;
  let savedPath: string | undefined;
  const executor = createLocalExecutor();
  const stages: string[] = [];
  const run = (verify = true, outFile = file) =>
    ({
      ctx: {
        cmd: new HostCommands(executor, 'qemu:///system'),
        verify,
        hooks: { stage: ({ stage, phase }: { stage: string; phase: string }) => stages.push(`${stage}:${phase}`) },
      },
      domain: { name: 'd', primaryDisk: { virtualSizeBytes: VIRTUAL } },
      format: 'qcow2',
      outFile,
      signal: undefined,
      progress: () => undefined,
    }) as unknown as Run;
  const setCheck = (exit: number, json: object) => {
    writeFileSync(join(fake, 'check-exit'), String(exit));
    writeFileSync(join(fake, 'check-json'), JSON.stringify(json));
  };

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'ii-streamseal-'));
    mkdirSync(join(root, 'bin'));
    writeFileSync(join(root, 'bin', 'qemu-img'), FAKE_QEMU_IMG);
    chmodSync(join(root, 'bin', 'qemu-img'), 0o755);
    savedPath = process.env.PATH;
    process.env.PATH = `${join(root, 'bin')}:${process.env.PATH ?? ''}`;
    file = join(root, 'out.qcow2');
    bytes = randomBytes(3 * 1024 * 1024 + 17);
    writeFileSync(file, bytes);
  });
  afterAll(async () => {
    process.env.PATH = savedPath;
    rmSync(root, { recursive: true, force: true });
    await executor.close();
  });
  beforeEach(() => {
    fake = mkdtempSync(join(root, 'fake-'));
    process.env.FAKE = fake;
    stages.length = 0;
    writeFileSync(join(fake, 'info'), JSON.stringify({ format: 'qcow2', 'virtual-size': VIRTUAL }));
    setCheck(0, { 'check-errors': 0, corruptions: 0, leaks: 0, 'image-end-offset': bytes.length });
  });

  /** A consumer that lets the check finish once it holds every byte of the file, and records what it saw. */
  const consumer = () => {
    const seen = { chunks: [] as Buffer[], size: -1, ended: false, error: undefined as unknown, checkedAtAllBytes: true };
    const consume = async (stream: Readable, size: number) => {
      seen.size = size;
      let received = 0;
      try {
        for await (const chunk of stream) {
          seen.chunks.push(chunk as Buffer);
          received += (chunk as Buffer).length;
          if (received === size) {
            seen.checkedAtAllBytes = existsSync(join(fake, 'checked'));
            writeFileSync(join(fake, 'go'), '');
          }
        }
        seen.ended = true;
      } catch (error) {
        seen.error = error;
        throw error;
      }
    };
    return { seen, consume };
  };

  it('streams every byte while the check runs, and ends the stream only after the check passed', async () => {
    const { seen, consume } = consumer();
    const sealed = await streamOut(run(), consume);
    expect(seen.size).toBe(bytes.length);
    expect(Buffer.concat(seen.chunks).equals(bytes)).toBe(true);
    // Every byte reached the consumer while the check was still waiting; the end came after it.
    expect(seen.checkedAtAllBytes).toBe(false);
    expect(seen.ended).toBe(true);
    expect(sealed.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(sealed.facts).toMatchObject({ sizeBytes: bytes.length, info: { format: 'qcow2', virtualSizeBytes: VIRTUAL } });
    expect(stages).toEqual(['check:start', 'check:end']);
  });

  it('fails the stream before its end when the check finds corruptions', async () => {
    setCheck(2, { 'check-errors': 0, corruptions: 3, leaks: 0 });
    const { seen, consume } = consumer();
    await expect(streamOut(run(), consume)).rejects.toMatchObject({
      code: 'CAPTURE_FAILED',
      message: expect.stringMatching(/not complete.*3 corrupt/),
    });
    expect(Buffer.concat(seen.chunks).length).toBe(bytes.length);
    expect(seen.ended).toBe(false);
    expect(seen.error).toMatchObject({ code: 'CAPTURE_FAILED' });
  });

  it('fails the stream when qemu-img info reports another virtual size', async () => {
    writeFileSync(join(fake, 'info'), JSON.stringify({ format: 'qcow2', 'virtual-size': VIRTUAL / 2 }));
    const { seen, consume } = consumer();
    await expect(streamOut(run(), consume)).rejects.toMatchObject({
      code: 'CAPTURE_FAILED',
      message: expect.stringMatching(/virtual size/),
    });
    expect(seen.ended).toBe(false);
  });

  it('runs no check with verification off', async () => {
    setCheck(2, { corruptions: 1 });
    const { seen, consume } = consumer();
    writeFileSync(join(fake, 'go'), '');
    await streamOut(run(false), consume);
    expect(seen.ended).toBe(true);
    expect(existsSync(join(fake, 'check-started'))).toBe(false);
  });

  it('a missing output fails with CAPTURE_FAILED and never calls the consumer', async () => {
    const { seen, consume } = consumer();
    await expect(streamOut(run(true, join(root, 'missing.qcow2')), consume)).rejects.toMatchObject({ code: 'CAPTURE_FAILED' });
    expect(seen.size).toBe(-1);
  });

  it('a consumer that fails mid-stream fails the seal with its error and stops the script', async () => {
    writeFileSync(join(fake, 'go'), '');
    await expect(
      streamOut(run(), async (stream) => {
        for await (const chunk of stream) {
          void chunk;
          throw new Error('upload refused');
        }
      }),
    ).rejects.toThrow('upload refused');
  });
});
