/**
 * What the hypervisors of the real-parts test saw, recorded on their side (never from the queue's
 * bookkeeping): each domain's backup job as libvirt reports it (`virsh domjobinfo`; the interval
 * is rebuilt from libvirt's own elapsed time), and each capture run's files in the hypervisor's
 * scratch directory (a pull-mode capture keeps its NBD socket, backup scratch and converted output
 * there, named `ii-<kind>-<domain tag>-<run id>`, from before its job starts until its upload
 * ended). Two intervals overlap when each began before the other was last seen.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { TEST_URI } from '../../support/guests';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Something a hypervisor did, from its first to its last sighting. */
export interface SeenInterval {
  hypervisorId: string;
  /** The domain (a backup job) or the run id (`<domain tag>-<run id>`, a capture's scratch files). */
  what: string;
  start: number;
  lastSeen: number;
}

/** A capture's own scratch files (the capability probes of a driver are not captures). */
const RUN_FILE = /^ii-(?:nbd|scratch|out)-([0-9a-f]{8}-[0-9a-f]{8})(?:\.[a-z0-9]+)?$/;

/** Samples libvirt's jobs and the scratch directories until stopped. */
export class HypervisorRecorder {
  /** Backup jobs, per domain. */
  readonly jobs: SeenInterval[] = [];
  /** Capture runs, per run id. */
  readonly runs: SeenInterval[] = [];
  private readonly jobsNow = new Map<string, SeenInterval>();
  private readonly openRuns = new Map<string, SeenInterval>();
  private sampling = false;
  private loops: Promise<void>[] = [];

  constructor(
    /** Domain name → hypervisor id. */
    private readonly domains: () => Map<string, string>,
    /** Hypervisor id → scratch directory. */
    private readonly scratchDirs: Record<string, string>,
  ) {}

  start(): void {
    this.sampling = true;
    this.loops = [this.sampleJobs(), this.sampleRuns()];
  }

  async stop(): Promise<void> {
    this.sampling = false;
    await Promise.all(this.loops);
  }

  /** The backup job of `domainName` libvirt shows now, if any. */
  openJob(domainName: string): SeenInterval | undefined {
    return this.jobsNow.get(domainName);
  }

  /** Every backup job libvirt shows now. */
  openJobs(): SeenInterval[] {
    return [...this.jobsNow.values()];
  }

  /** The capture runs whose files are in `hypervisorId`'s scratch directory now. */
  openRunsOn(hypervisorId: string): SeenInterval[] {
    return [...this.openRuns.values()].filter((r) => r.hypervisorId === hypervisorId);
  }

  private async sampleJobs(): Promise<void> {
    while (this.sampling) {
      for (const [domainName, hypervisorId] of this.domains()) {
        const { stdout } = await run('virsh', ['-c', TEST_URI, 'domjobinfo', '--domain', domainName]).catch(() => ({ stdout: '' }));
        const now = Date.now();
        const elapsed = /Time elapsed:\s+(\d+)\s*ms/.exec(stdout);
        if (!/Job type:\s+None/.test(stdout) && elapsed) {
          const start = now - Number(elapsed[1]);
          const current = this.jobsNow.get(domainName);
          // The same job while its start agrees (within the sampling error); else a new job.
          if (current && Math.abs(current.start - start) < 1_000) current.lastSeen = now;
          else {
            const job = { hypervisorId, what: domainName, start, lastSeen: now };
            this.jobsNow.set(domainName, job);
            this.jobs.push(job);
          }
        } else this.jobsNow.delete(domainName);
      }
      await sleep(50);
    }
  }

  private async sampleRuns(): Promise<void> {
    while (this.sampling) {
      const now = Date.now();
      const present = new Set<string>();
      for (const [hypervisorId, dir] of Object.entries(this.scratchDirs)) {
        for (const name of existsSync(dir) ? readdirSync(dir) : []) {
          const id = RUN_FILE.exec(name)?.[1];
          if (id === undefined) continue;
          present.add(id);
          const current = this.openRuns.get(id);
          if (current) current.lastSeen = now;
          else {
            const seen = { hypervisorId, what: id, start: now, lastSeen: now };
            this.openRuns.set(id, seen);
            this.runs.push(seen);
          }
        }
      }
      for (const id of this.openRuns.keys()) if (!present.has(id)) this.openRuns.delete(id);
      await sleep(25);
    }
  }
}

/** The pairs of intervals on one hypervisor that overlap. */
export function overlapsOnOneHypervisor(intervals: readonly SeenInterval[]): [SeenInterval, SeenInterval][] {
  const found: [SeenInterval, SeenInterval][] = [];
  intervals.forEach((a, i) =>
    intervals.slice(i + 1).forEach((b) => {
      if (a.hypervisorId === b.hypervisorId && a.start <= b.lastSeen && b.start <= a.lastSeen) found.push([a, b]);
    }),
  );
  return found;
}

/** Whether some interval on `first` overlaps some interval on `second` (both hypervisors worked at once). */
export function hypervisorsWorkedAtOnce(intervals: readonly SeenInterval[], first: string, second: string): boolean {
  const on = (id: string) => intervals.filter((i) => i.hypervisorId === id);
  return on(first).some((a) => on(second).some((b) => a.start <= b.lastSeen && b.start <= a.lastSeen));
}
