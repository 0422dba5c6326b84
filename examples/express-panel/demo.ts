/**
 * `npm run demo`: the README's main job. As root on a Debian 12 machine it
 *  1. makes sure libvirt/QEMU is running (installs and starts it with scripts/setup-hypervisor.sh
 *     when absent, unless --no-install),
 *  2. creates a throwaway TCG demo guest with a recognizable 256 MiB disk,
 *  3. starts the example panel on 127.0.0.1 and prints its URL,
 *  4. runs a guided tour against its HTTP API: capture the running guest with a progress bar, list
 *     My Images, show the usage report's Images lines, deploy the image as a new guest's disk and
 *     boot it, delete the image (the new guest keeps running),
 *  5. keeps serving until Ctrl-C (or exits at once with --once), then removes its guests and files.
 * With `--workers N` (or II_DEMO_WORKERS=N) the panel process only enqueues and N worker
 * processes run the work, over BullMQ on Redis (REDIS_URL, default redis://127.0.0.1:6390).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestGuest, uniqueSuffix, type TestGuest } from '../../test/support/guests';
import { DEMO_HYPERVISOR, DEMO_LOCATION, startPanel, type Panel } from './panel';

const argv = process.argv.slice(2);
const args = new Set(argv);
const workersArg = argv.includes('--workers') ? argv[argv.indexOf('--workers') + 1] : process.env.II_DEMO_WORKERS;
const workers = workersArg === undefined ? 0 : Number(workersArg);
const once = args.has('--once');
const noInstall = args.has('--no-install') || process.env.II_DEMO_NO_INSTALL === '1';
const root = fileURLToPath(new URL('../../', import.meta.url));
const account = 'acct-demo';
const headers = { 'x-account': account, 'content-type': 'application/json' };

const say = (line = '') => console.log(line);
const step = (title: string) => say(`\n\x1b[1m== ${title}\x1b[0m`);

function virshAnswers(): boolean {
  return spawnSync('virsh', ['-c', 'qemu:///system', 'version'], { stdio: 'ignore' }).status === 0;
}

function ensureLibvirt(): void {
  if (virshAnswers()) return;
  if (noInstall)
    throw new Error('libvirt is not running on qemu:///system; start it (bash scripts/setup-hypervisor.sh) or drop --no-install');
  step('Installing and starting libvirt/QEMU (scripts/setup-hypervisor.sh)');
  const result = spawnSync('bash', [join(root, 'scripts/setup-hypervisor.sh'), 'start'], { stdio: 'inherit' });
  if (result.status !== 0 || !virshAnswers()) throw new Error('scripts/setup-hypervisor.sh failed; see its output above');
}

async function api<T>(panel: Panel, method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<T> {
  const res = await fetch(`${panel.url}/api${path}`, {
    method,
    headers: { ...headers, ...extraHeaders },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  const parsed = text ? (JSON.parse(text) as unknown) : null;
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${JSON.stringify(parsed)}`);
  return parsed as T;
}

interface TaskJson {
  id: string;
  status: string;
  /** `percent` is the whole task's and never decreases (see docs/architecture.md, "Task progress"). */
  progress: { step: string; percent: number; bytesDone: number; bytesTotal: number | null };
  errorMessage: string | null;
  /** The panel process (`panel-web`, or its default id) or worker (`panel-worker-N`) that ran it. */
  workerId: string | null;
}

/** Follows a task's Server-Sent Events and draws a progress bar until it finishes. */
async function followTask(panel: Panel, taskId: string): Promise<TaskJson> {
  const res = await fetch(`${panel.url}/api/tasks/${encodeURIComponent(taskId)}/events`, { headers });
  if (!res.ok || !res.body) throw new Error(`task events → ${res.status}`);
  const decoder = new TextDecoder();
  let buffer = '';
  let last: TaskJson | null = null;
  const draw = (task: TaskJson) => {
    const pct = task.progress.percent;
    const bar = '#'.repeat(Math.floor(pct / 4)).padEnd(25, '.');
    process.stdout.write(`\r  [${bar}] ${String(pct).padStart(3)}%  ${task.progress.step.padEnd(20)}`);
  };
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let split: number;
    while ((split = buffer.indexOf('\n\n')) >= 0) {
      const message = buffer.slice(0, split);
      buffer = buffer.slice(split + 2);
      const event = /^event: (.*)$/m.exec(message)?.[1];
      const data = /^data: (.*)$/m.exec(message)?.[1];
      if (!data) continue;
      last = JSON.parse(data) as TaskJson;
      draw(last);
      if (event === 'task.finished') {
        process.stdout.write('\n');
        return last;
      }
    }
  }
  process.stdout.write('\n');
  if (!last) throw new Error('the task event stream ended without a task');
  return last;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the demo drives the system libvirt: run it as root (sudo npm run demo)');
  if (!Number.isInteger(workers) || workers < 0 || workers > 16) throw new Error('--workers takes a whole number from 0 to 16');
  ensureLibvirt();
  const suffix = uniqueSuffix();
  const dataDir = `/var/tmp/instance-images-demo/${suffix}`;
  mkdirSync(dataDir, { recursive: true });
  const guests: TestGuest[] = [];
  let copyDomain: string | null = null;
  let panel: Panel | null = null;
  const cleanup = async () => {
    await panel?.close().catch(() => undefined);
    if (copyDomain) {
      spawnSync('virsh', ['-c', 'qemu:///system', 'destroy', '--domain', copyDomain], { stdio: 'ignore' });
      spawnSync('virsh', ['-c', 'qemu:///system', 'undefine', '--domain', copyDomain], { stdio: 'ignore' });
    }
    for (const guest of guests) guest.remove();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    step('Creating a throwaway TCG demo guest');
    const guest = createTestGuest({
      name: `ii-demo-${suffix}`,
      diskMiB: 256,
      cdrom: false,
      agentChannel: false,
      writes: ['write -P 0xab 0 8M', 'write -P 0xcd 128M 8M'],
    });
    guests.push(guest);
    say(`  domain ${guest.name} is running (disk ${guest.primaryPath})`);

    panel = await startPanel({
      dataDir,
      workers,
      instances: [
        {
          id: 'vm-demo',
          name: 'demo-web-1',
          accountId: account,
          locationId: DEMO_LOCATION,
          hypervisorId: DEMO_HYPERVISOR,
          domainName: guest.name,
        },
      ],
    });
    step(`Example panel listening on ${panel.url}`);
    if (workers > 0) say(`  ${workers} worker processes run the work (pids ${panel.workerPids.join(', ')}); this one only enqueues`);
    say(`  My Images page: ${panel.url}/?account=${account}`);
    say(`  OpenAPI:        ${panel.url}/api/openapi.json`);

    step('Create Image from the running instance (live, no power-down)');
    const created = await api<{ image: { id: string; name: string }; task: { id: string } }>(panel, 'POST', '/images', {
      instanceId: 'vm-demo',
      name: 'production-web-server-v2',
    });
    const finished = await followTask(panel, created.task.id);
    if (finished.status !== 'completed') throw new Error(`the capture failed: ${finished.errorMessage ?? finished.status}`);
    if (workers > 0) say(`  captured by ${finished.workerId ?? 'a worker'}`);

    step('My Images');
    const list = await api<{
      items: {
        id: string;
        name: string;
        sourceInstanceName: string;
        sizeBytes: number;
        status: string;
        createdAt: string;
        consistency: string;
      }[];
    }>(panel, 'GET', '/images');
    for (const image of list.items) {
      say(
        `  ${image.name.padEnd(28)} source ${image.sourceInstanceName.padEnd(12)} ${(image.sizeBytes / 1048576).toFixed(1).padStart(7)} MiB  ${image.status.padEnd(10)} ${image.createdAt}  (${image.consistency})`,
      );
    }

    step('Usage report: Images section (this month)');
    const now = new Date();
    const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString();
    const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString();
    const report = await api<{
      currency: string;
      images: { lines: { imageName: string; sizeBytes: number; billedHours: string; rate: string; amount: string }[]; total: string };
    }>(panel, 'GET', `/usage?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
    for (const line of report.images.lines)
      say(
        `  ${line.imageName.padEnd(28)} ${(line.sizeBytes / 2 ** 20).toFixed(1)} MiB at ${line.rate} ${report.currency}/GB-month, ${line.billedHours} h so far → ${line.amount} ${report.currency}`,
      );
    say(`  Images total: ${report.images.total} ${report.currency}`);

    step('Deploy the image as the disk of a new instance, and boot it');
    copyDomain = `ii-demo-copy-${suffix}`;
    panel.instances.set('vm-copy', {
      id: 'vm-copy',
      name: 'demo-web-2',
      accountId: account,
      locationId: DEMO_LOCATION,
      hypervisorId: DEMO_HYPERVISOR,
      domainName: copyDomain,
    });
    const target = join(dataDir, 'vm-copy.qcow2');
    // The host's create-instance flow (not the customer) asks for the disk, at a path it chooses.
    // The answer (202) comes at once with the deploy task; the disk exists once the task completes.
    const deploy = await api<{ task: TaskJson }>(
      panel,
      'POST',
      '/admin/deployments',
      { imageId: created.image.id, instanceId: 'vm-copy', targetPath: target },
      { 'x-admin': 'yes' },
    );
    const deployed = await followTask(panel, deploy.task.id);
    if (deployed.status !== 'completed') throw new Error(`the deploy ${deployed.status}: ${deployed.errorMessage ?? ''}`);
    const xml = join(dataDir, 'vm-copy.xml');
    writeFileSync(
      xml,
      `<domain type='qemu'><name>${copyDomain}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${target}'/><target dev='vda' bus='virtio'/></disk><memballoon model='none'/></devices></domain>`,
    );
    for (const cmd of [
      ['define', '--file', xml],
      ['start', '--domain', copyDomain],
    ]) {
      const r = spawnSync('virsh', ['-c', 'qemu:///system', ...cmd], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`virsh ${cmd[0]} failed: ${r.stderr}`);
    }
    say(`  ${copyDomain} boots from ${target} (a standalone disk, no backing file)`);

    step('Delete the image (billing stops now; the new instance keeps working)');
    await api(panel, 'DELETE', `/images/${created.image.id}`);
    for (let i = 0; i < 100; i++) {
      const page = await api<{ items: { id: string }[] }>(panel, 'GET', '/images');
      if (!page.items.some((x) => x.id === created.image.id)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const state = spawnSync('virsh', ['-c', 'qemu:///system', 'domstate', '--domain', copyDomain], { encoding: 'utf8' }).stdout.trim();
    say(`  image deleted; ${copyDomain} is ${state}`);

    if (once) {
      step('Done (--once): cleaning up');
      return;
    }
    step(`Tour done. The panel keeps serving on ${panel.url} — press Ctrl-C to stop and clean up.`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    say('\nStopping: removing the demo guests and files.');
  } finally {
    await cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(`\ndemo failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
