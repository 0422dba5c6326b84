/**
 * Recovery of interrupted captures, driven only by what libvirt and the scratch directory show:
 * our backup jobs are aborted, marker overlays are committed back, ready active-commit mirrors are
 * pivoted, and our temporary files are removed once nothing references them. Idempotent.
 * @module
 */
import type { RecoveryAction } from '../../../src/ports/hypervisor-driver';
import { stopQemuNbd } from './capture-chunks';
import type { HostCommands } from './commands';
import { domainTag, isMarkerOverlay, isScratchName } from './names';
import { parseBackupXml, parseDomJobInfo, parseDomState, parseDomainDisks, parseNameList } from './parsers';
import { parseXml, type XmlElement } from './xml';

function inScratch(path: string, scratchDir: string): boolean {
  const dir = scratchDir.replace(/\/+$/, '');
  return path.startsWith(`${dir}/`) && isScratchName(path.slice(dir.length + 1));
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Waits until the active-commit job of `target` is ready to pivot (or gone); true when ready. */
async function waitCommitReady(cmd: HostCommands, domainName: string, target: string, timeoutMs = 120_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { root } = await readXml(cmd, domainName);
    const disk = parseDomainDisks(root).find((d) => d.target === target);
    if (!disk?.mirror) return false;
    if (disk.mirror.ready) return true;
    await sleep(200);
  }
  return false;
}

async function readXml(cmd: HostCommands, domainName: string): Promise<{ root: XmlElement }> {
  const result = await cmd.virsh(['dumpxml', '--domain', domainName]);
  return { root: parseXml(result.stdout) };
}

/** Recovers one domain; returns what was done. */
async function recoverDomain(cmd: HostCommands, scratchDir: string, domainName: string, actions: RecoveryAction[]): Promise<void> {
  const state = await cmd.tryVirsh(['domstate', '--domain', domainName]);
  if (state.exitCode !== 0) return;
  const running = ['running', 'paused'].includes(parseDomState(state.stdout));

  if (running) {
    const job = await cmd.tryVirsh(['domjobinfo', '--domain', domainName]);
    if (job.exitCode === 0 && parseDomJobInfo(job.stdout).active) {
      const backup = await cmd.tryVirsh(['backup-dumpxml', '--domain', domainName]);
      if (backup.exitCode === 0 && backup.stdout.trim() !== '') {
        const parsed = parseBackupXml(backup.stdout);
        const ours = [parsed.socket, ...parsed.files].some((p) => p !== null && inScratch(p, scratchDir));
        if (ours) {
          await cmd.tryVirsh(['domjobabort', '--domain', domainName]);
          for (let i = 0; i < 300; i++) {
            const again = await cmd.tryVirsh(['domjobinfo', '--domain', domainName]);
            if (again.exitCode !== 0 || !parseDomJobInfo(again.stdout).active) break;
            await sleep(100);
          }
          actions.push({ domainName, action: 'abort-backup-job', detail: `aborted a leftover ${parsed.mode}-mode backup job` });
        }
      }
    }
  }

  const { root } = await readXml(cmd, domainName);
  for (const disk of parseDomainDisks(root)) {
    if (disk.source === null) continue;
    const marker = isMarkerOverlay(disk.source);
    if (disk.mirror?.job === 'active-commit' && running && marker) {
      const ready = disk.mirror.ready || (await waitCommitReady(cmd, domainName, disk.target));
      if (ready) {
        await cmd.virsh(['blockjob', '--domain', domainName, '--path', disk.target, '--pivot']);
        actions.push({ domainName, action: 'pivot-active-commit', detail: `pivoted ${disk.target} back to its base` });
      }
      continue;
    }
    if (marker && disk.backingChain.length > 0) {
      if (!running) {
        actions.push({
          domainName,
          action: 'overlay-needs-offline-commit',
          detail: `${disk.target} runs on a capture overlay but the domain is not running; start it and run recovery again`,
        });
        continue;
      }
      const result = await cmd.tryVirsh(['blockcommit', '--domain', domainName, '--path', disk.target, '--active', '--pivot', '--wait']);
      if (result.exitCode !== 0) {
        // A commit job may already be running from the interrupted capture: wait for it and pivot.
        if (await waitCommitReady(cmd, domainName, disk.target)) {
          await cmd.virsh(['blockjob', '--domain', domainName, '--path', disk.target, '--pivot']);
        } else {
          actions.push({
            domainName,
            action: 'commit-failed',
            detail: `could not commit the overlay of ${disk.target}: ${result.stderr.trim()}`,
          });
          continue;
        }
      }
      actions.push({
        domainName,
        action: 'commit-overlay',
        detail: `committed the capture overlay of ${disk.target} back into ${disk.backingChain[0] ?? 'its base'}`,
      });
    }
  }
}

/** Paths referenced by any domain's live or inactive disks (never removed by recovery). */
async function referencedPaths(cmd: HostCommands, names: readonly string[]): Promise<Set<string>> {
  const used = new Set<string>();
  for (const name of names) {
    for (const flags of [[], ['--inactive']]) {
      const xml = await cmd.tryVirsh(['dumpxml', ...flags, '--domain', name]);
      if (xml.exitCode !== 0) continue;
      for (const disk of parseDomainDisks(xml.stdout)) {
        if (disk.source) used.add(disk.source);
        for (const path of disk.backingChain) used.add(path);
      }
    }
  }
  return used;
}

/**
 * Recovers leftovers of interrupted captures on this hypervisor (or only of `domainName`).
 * Without a domain it must run when no capture is in progress (service start-up).
 */
export async function recoverLeftovers(cmd: HostCommands, scratchDir: string, domainName?: string): Promise<RecoveryAction[]> {
  const actions: RecoveryAction[] = [];
  const all = parseNameList((await cmd.virsh(['list', '--all', '--name'])).stdout);
  const names = domainName === undefined ? all : all.filter((n) => n === domainName);
  for (const name of names) await recoverDomain(cmd, scratchDir, name, actions);

  const dir = scratchDir.replace(/\/+$/, '');
  const listing = await cmd.tryRun(['find', dir, '-mindepth', '1', '-maxdepth', '1', '-printf', '%f\\0']);
  if (listing.exitCode === 0) {
    const tag = domainName === undefined ? undefined : domainTag(domainName);
    const candidates = listing.stdout.split('\u0000').filter((n) => n !== '' && isScratchName(n, tag));
    // A qemu-nbd of an interrupted chunked capture of a stopped domain (ii-qnbd-) keeps its disk
    // locked; one of an interrupted chunked deploy (ii-nbd-, named after the target) keeps serving
    // the half-written part file. Each is stopped only when it still serves the socket beside its
    // pid file, then both files go.
    const pidFiles = candidates.filter((n) => /^ii-q?nbd-/.test(n) && n.endsWith('.pid'));
    for (const pidFile of pidFiles) {
      await stopQemuNbd(cmd, `${dir}/${pidFile}`, `${dir}/${pidFile.slice(0, -'.pid'.length)}.sock`);
      actions.push({
        domainName: domainName ?? null,
        action: 'stop-qemu-nbd',
        detail: `stopped the NBD server of an interrupted ${pidFile.startsWith('ii-qnbd-') ? 'capture' : 'deploy'}`,
      });
    }
    if (candidates.length > 0) {
      const used = await referencedPaths(cmd, all);
      const removable = candidates.map((n) => `${dir}/${n}`).filter((p) => !used.has(p));
      if (removable.length > 0) {
        // A chunked capture's start keeps its answers in a directory (ii-xml-*.d).
        const dirs = removable.filter((p) => p.endsWith('.d'));
        await cmd.remove(...removable.filter((p) => !p.endsWith('.d')));
        if (dirs.length > 0) await cmd.run(['rm', '-rf', '--', ...dirs]);
        actions.push({
          domainName: domainName ?? null,
          action: 'remove-scratch-files',
          detail: `removed ${removable.length} leftover temporary file(s)`,
        });
      }
    }
  }
  return actions;
}
