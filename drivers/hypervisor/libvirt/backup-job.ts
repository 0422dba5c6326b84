/**
 * The parts of a live capture shared by the file/stream capture (capture.ts) and the chunked
 * capture (capture-chunks.ts): the guest-agent freeze window and the backup job's start and end.
 * @module
 */
import type { Run } from './capture-run';
import { parseDomJobInfo } from './parsers';

/** Tries a guest-agent filesystem freeze; returns whether it took effect. */
async function freeze(run: Run): Promise<boolean> {
  const { ctx, request, domain } = run;
  if (request.freeze === false || !domain.guestAgentConnected) return false;
  try {
    const result = await ctx.cmd.tryVirsh(['domfsfreeze', '--domain', domain.name], { timeoutMs: ctx.freezeTimeoutMs });
    return result.exitCode === 0;
  } catch {
    return false;
  }
}

/** Thaws after a freeze attempt; a failure here is reported but never blocks the cleanup. */
async function thaw(run: Run): Promise<void> {
  try {
    await run.ctx.cmd.tryVirsh(['domfsthaw', '--domain', run.domain.name], { timeoutMs: run.ctx.freezeTimeoutMs });
  } catch {
    // the guest agent thaws by itself after its own timeout
  }
}

/** Starts the point-in-time operation inside a freeze window (thaw always attempted). */
export async function withFreeze(run: Run, start: () => Promise<void>): Promise<boolean> {
  const frozen = await freeze(run);
  try {
    await start();
  } finally {
    if (frozen || (run.request.freeze !== false && run.domain.guestAgentConnected)) await thaw(run);
  }
  return frozen;
}

/** Waits until no block job (backup) is active on the domain. */
async function waitJobGone(run: Run, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const info = await run.ctx.cmd.tryVirsh(['domjobinfo', '--domain', run.domain.name]);
    if (info.exitCode !== 0 || !parseDomJobInfo(info.stdout).active) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether a job (ours: a domain runs one at a time) is active on the domain. */
async function jobActive(run: Run): Promise<boolean> {
  const info = await run.ctx.cmd.tryVirsh(['domjobinfo', '--domain', run.domain.name]);
  return info.exitCode === 0 && parseDomJobInfo(info.stdout).active;
}

/**
 * Ends a backup job and removes its files. Safe to call when no job runs; `running` says the
 * caller started the job and it was not seen to end (no need to ask libvirt first).
 */
export async function endBackupJob(run: Run, files: string[], running: boolean): Promise<void> {
  const { cmd } = run.ctx;
  if (running || (await jobActive(run))) {
    await cmd.tryVirsh(['domjobabort', '--domain', run.domain.name]);
    // QEMU may still hold the scratch file for a moment: unlinking it meanwhile is harmless.
    await Promise.all([waitJobGone(run), cmd.remove(...files)]);
  } else {
    await cmd.remove(...files);
  }
}

/**
 * Starts the domain's backup job (pull or push) described by `xml`; with `checkpointXml`, libvirt
 * creates that checkpoint at the same point in time as the backup, in one transaction.
 */
export async function beginBackup(run: Run, xml: string, checkpointXml?: string): Promise<void> {
  await run.ctx.cmd.virshWithFile(
    run.ctx.scratchDir,
    xml,
    (file, second) => ['backup-begin', '--domain', run.domain.name, '--backupxml', file, ...(second ? ['--checkpointxml', second] : [])],
    'CAPTURE_FAILED',
    checkpointXml,
  );
}
