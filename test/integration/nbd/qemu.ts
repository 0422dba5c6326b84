import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';

/** Why the NBD suites cannot run here (qemu-utils missing), or null. In CI that is a failure. */
export function qemuSkipReason(): string | null {
  let reason: string | null = null;
  for (const tool of ['qemu-img', 'qemu-io', 'qemu-nbd']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
    } catch {
      reason = `${tool} is not installed (apt-get install qemu-utils, or run scripts/setup-hypervisor.sh)`;
      break;
    }
  }
  if (reason !== null && process.env.CI) throw new Error(`Integration service missing in CI: ${reason}`);
  return reason;
}

/** A fresh directory for one suite (short: unix socket paths are limited to 107 bytes). */
export function freshDir(name: string): string {
  const dir = `/var/tmp/ii-nbd-${name}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Runs a program with argv (no shell) and returns its stdout. */
export function run(program: string, ...args: string[]): string {
  return execFileSync(program, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

/** Creates a qcow2 image of `size` (qemu-img syntax) and applies qemu-io commands such as `write -P 0xab 0 4M`. */
export function makeImage(path: string, size: string, writes: readonly string[] = []): void {
  run('qemu-img', 'create', '-q', '-f', 'qcow2', path, size);
  writeImage(path, writes);
}

/** Applies qemu-io commands to a stopped qcow2 image (persistent bitmaps are updated). */
export function writeImage(path: string, writes: readonly string[]): void {
  if (writes.length > 0) run('qemu-io', '-f', 'qcow2', ...writes.flatMap((w) => ['-c', w]), path);
}

/** The image converted to raw bytes, read independently of the NBD client. */
export function rawBytes(image: string, dir: string): Buffer {
  const raw = `${dir}/raw-${createHash('sha1').update(image).digest('hex').slice(0, 8)}.img`;
  run('qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', image, raw);
  const bytes = readFileSync(raw);
  rmSync(raw, { force: true });
  return bytes;
}

/** One `qemu-img map --output=json` entry. */
export interface MapEntry {
  start: number;
  length: number;
  data: boolean;
  zero: boolean;
}

/** `qemu-img map --output=json` of an image. */
export function qemuImgMap(image: string): MapEntry[] {
  return (JSON.parse(run('qemu-img', 'map', '--output=json', '-f', 'qcow2', image)) as MapEntry[]).map(({ start, length, data, zero }) => ({
    start,
    length,
    data,
    zero,
  }));
}

/** A running qemu-nbd serving one image on a unix socket. */
export interface QemuNbd {
  socket: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `qemu-nbd` (read-only, persistent, several clients) exporting `image` as `exportName`. */
export async function startQemuNbd(
  image: string,
  socket: string,
  options: { exportName?: string; bitmap?: string } = {},
): Promise<QemuNbd> {
  rmSync(socket, { force: true });
  const args = ['-r', '-t', '-e', '8', '-f', 'qcow2', '-k', socket, '-x', options.exportName ?? 'vda'];
  if (options.bitmap) args.push('-B', options.bitmap);
  const child = spawn('qemu-nbd', [...args, image], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`qemu-nbd exited: ${stderr}`);
    if (existsSync(socket) && (await connectable(socket))) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    socket,
    process: child,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(socket, { force: true });
    },
  };
}

function connectable(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** SHA-256 (hex) of a buffer with node's crypto. */
export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
