/**
 * Small TCG test guests on the real libvirt: an OS-less `<domain type='qemu'>` with a qcow2
 * primary disk holding known patterns, an extra data disk and a cdrom (to prove only the primary
 * disk is captured). Unique names; `remove()` destroys, undefines and deletes the files.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { escapeXml } from '../../drivers/hypervisor/libvirt/xml';

/** The libvirt URI the tests use. */
export const TEST_URI = 'qemu:///system';
/** Where test guests keep their files. */
export const GUEST_ROOT = '/var/tmp/instance-images-test/guests';

/** Runs virsh locally (argv, no shell); throws with stderr on failure. */
export function virsh(...args: string[]): string {
  return execFileSync('virsh', ['-q', '-c', TEST_URI, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a program locally; returns exit code and output. */
export function sh(program: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(program, args, { encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Null when libvirt answers, else the reason it does not. */
export function libvirtUnavailableReason(): string | null {
  const result = sh('virsh', '-c', TEST_URI, 'version');
  if (result.code !== 0) return `libvirt is not answering on ${TEST_URI} (run scripts/setup-hypervisor.sh): ${result.stderr.trim()}`;
  for (const tool of ['qemu-img', 'qemu-io', 'xorriso']) {
    if (sh('which', tool).code !== 0) return `${tool} is not installed (run scripts/setup-hypervisor.sh)`;
  }
  return null;
}

/** A test guest and its files. */
export interface TestGuest {
  name: string;
  dir: string;
  primaryPath: string;
  dataPath: string;
  isoPath: string;
  /** Destroys (if running) and undefines the domain, and deletes its directory. Idempotent. */
  remove(): void;
}

/** Options of {@link createTestGuest}. */
export interface TestGuestOptions {
  /** Domain name; default `ii-test-<random>`. */
  name?: string;
  /** Start the domain. Default true. */
  start?: boolean;
  /** Primary disk virtual size in MiB (64–256). Default 64. */
  diskMiB?: number;
  /** Extra `qemu-io` write commands (default: 0xab at 0 and 0xcd at 32 MiB, 1 MiB each). */
  writes?: string[];
  /** Add a guest agent channel (never connected: the guest has no OS). Default true. */
  agentChannel?: boolean;
  /** Add a cdrom with a small ISO. Default true. */
  cdrom?: boolean;
  /** Give the primary disk its own I/O thread (`<iothreads>` and the disk's `iothread`). Default false. */
  iothread?: boolean;
  /** Environment variables of the guest's QEMU process (`<qemu:env>`); none by default. */
  qemuEnv?: Record<string, string>;
  /**
   * Encrypt the primary disk with LUKS (qcow2 `encrypt.format=luks`), its passphrase in a libvirt
   * secret that `remove()` undefines; the default writes are skipped. Default false.
   */
  encrypted?: boolean;
}

/** A short random suffix for unique names. */
export function uniqueSuffix(): string {
  return randomBytes(4).toString('hex');
}

/** Makes a small ISO file at `path` (xorriso). */
export function makeIso(path: string, label = 'IITEST'): void {
  const src = `${path}.d`;
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'README.TXT'), `instance-images test media ${label}\n`);
  // Its output is kept so that a failure says why (one CI run saw it fail without a word); one retry
  // on a fresh output file, since nothing here depends on the machine's state but the disk.
  const make = () => execFileSync('xorriso', ['-as', 'mkisofs', '-V', label, '-o', path, src], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    make();
  } catch (error) {
    const first = error as Error & { stderr?: Buffer; status?: number | null; signal?: string | null };
    console.error(`xorriso failed (exit ${first.status ?? first.signal}), retrying once: ${String(first.stderr ?? '').slice(-2000)}`);
    rmSync(path, { force: true });
    make();
  }
  rmSync(src, { recursive: true, force: true });
}

/**
 * Makes `path` a LUKS-encrypted qcow2 of `mib` MiB whose passphrase is the value of a new libvirt
 * secret `uuid` (usage: that volume), as a provider that encrypts disks at rest sets them up.
 */
function defineLuksDisk(dir: string, path: string, uuid: string, mib: number): void {
  const passphrase = randomBytes(16).toString('hex');
  const secretXml = join(dir, 'secret.xml');
  writeFileSync(
    secretXml,
    `<secret ephemeral='no' private='yes'><uuid>${uuid}</uuid><usage type='volume'><volume>${escapeXml(path)}</volume></usage></secret>`,
  );
  virsh('secret-define', '--file', secretXml);
  const valueFile = join(dir, 'secret.b64');
  writeFileSync(valueFile, Buffer.from(passphrase).toString('base64'), { mode: 0o600 });
  virsh('secret-set-value', '--secret', uuid, '--file', valueFile);
  rmSync(valueFile);
  const create = () =>
    execFileSync(
      'qemu-img',
      [
        'create',
        '-q',
        '--object',
        `secret,id=sec0,data=${passphrase}`,
        '-f',
        'qcow2',
        '-o',
        'encrypt.format=luks,encrypt.key-secret=sec0',
        path,
        `${mib}M`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
  // QEMU times its PBKDF on the thread's CPU clock, starting with a round short enough to measure
  // 0 ms where that clock ticks coarsely (a loaded VM: seen in CI) and then fails ("Unable to get
  // accurate CPU usage"); a new attempt measures anew.
  for (let attempt = 1; ; attempt++) {
    try {
      create();
      return;
    } catch (error) {
      rmSync(path, { force: true });
      if (attempt >= 8 || !/accurate CPU usage/.test(String((error as { stderr?: Buffer }).stderr ?? ''))) throw error;
    }
  }
}

/** Creates (and by default starts) a test guest. */
export function createTestGuest(options: TestGuestOptions = {}): TestGuest {
  const suffix = uniqueSuffix();
  const name = options.name ?? `ii-test-${suffix}`;
  const dir = join(GUEST_ROOT, suffix);
  mkdirSync(dir, { recursive: true });
  const primaryPath = join(dir, 'primary.qcow2');
  const dataPath = join(dir, 'data.qcow2');
  const isoPath = join(dir, 'media.iso');
  const secret = options.encrypted ? randomUUID() : null;
  const remove = () => {
    sh('virsh', '-c', TEST_URI, 'destroy', '--domain', name);
    // A domain with checkpoints (chunked captures leave them) is undefined only with their metadata.
    sh('virsh', '-c', TEST_URI, 'undefine', '--domain', name, '--checkpoints-metadata');
    if (secret) sh('virsh', '-c', TEST_URI, 'secret-undefine', '--secret', secret);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (secret) defineLuksDisk(dir, primaryPath, secret, options.diskMiB ?? 64);
    else {
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', primaryPath, `${options.diskMiB ?? 64}M`]);
      const writes = options.writes ?? ['write -P 0xab 0 1M', 'write -P 0xcd 32M 1M'];
      execFileSync('qemu-io', ['-f', 'qcow2', ...writes.flatMap((w) => ['-c', w]), primaryPath], { stdio: 'ignore' });
    }
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', dataPath, '16M']);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 1M', dataPath], { stdio: 'ignore' });
    if (options.cdrom !== false) makeIso(isoPath);
    const x = escapeXml;
    const env = Object.entries(options.qemuEnv ?? {});
    const qemuNamespace = env.length > 0 ? ` xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'` : '';
    const qemuCommandline =
      env.length > 0
        ? `\n  <qemu:commandline>${env.map(([k, v]) => `<qemu:env name='${x(k)}' value='${x(v)}'/>`).join('')}</qemu:commandline>`
        : '';
    const xml = `<domain type='qemu'${qemuNamespace}>
  <name>${x(name)}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>${options.iothread ? '\n  <iothreads>1</iothreads>' : ''}
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    ${options.cdrom !== false ? `<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='${x(isoPath)}'/><target dev='sda' bus='sata'/><readonly/></disk>` : ''}
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${x(dataPath)}'/><target dev='vdb' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'${options.iothread ? ` iothread='1'` : ''}/><source file='${x(primaryPath)}'>${secret ? `<encryption format='luks'><secret type='passphrase' uuid='${secret}'/></encryption>` : ''}</source><target dev='vda' bus='virtio'/><boot order='1'/></disk>
    ${options.agentChannel !== false ? `<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>` : ''}
    <memballoon model='none'/>
  </devices>${qemuCommandline}
</domain>`;
    const xmlPath = join(dir, 'domain.xml');
    writeFileSync(xmlPath, xml);
    virsh('define', '--file', xmlPath);
    if (options.start !== false) virsh('start', '--domain', name);
  } catch (error) {
    remove();
    throw error;
  }
  return { name, dir, primaryPath, dataPath, isoPath, remove };
}

/** The QEMU process id of a running test guest. */
export function qemuPid(name: string): number {
  // libvirt 9 writes the pid file under the XML-escaped name (`&apos;` for a quote).
  const file = [name, escapeXml(name)].map((n) => `/run/libvirt/qemu/${n}.pid`).find((f) => existsSync(f));
  if (file === undefined) throw new Error(`no pid file for domain ${JSON.stringify(name)}`);
  return Number(readFileSync(file, 'utf8').trim());
}

/** What must be identical before and after a capture: block list and live + inactive XML. */
export function diskChainSnapshot(name: string): { blklist: string; live: string; inactive: string } {
  return {
    blklist: virsh('domblklist', '--details', '--domain', name),
    live: virsh('dumpxml', '--domain', name),
    inactive: virsh('dumpxml', '--inactive', '--domain', name),
  };
}
