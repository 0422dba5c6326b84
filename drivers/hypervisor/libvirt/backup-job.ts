/**
 * The parts of a live capture shared by the file/stream capture (capture.ts) and the chunked
 * capture (capture-chunks.ts): the guest-agent freeze window and the backup job's start and end.
 * @module
 */
import type { Run } from './capture-run';

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

/**
 * `sh -c` script: aborts the job of domain `$2` (libvirt URI `$1`), removes the files named by the
 * remaining arguments, and waits (polling every 0.05 s, 30 s at most) until no job is active on the
 * domain, in one remote command instead of a round trip per step. Exits 0 when no job is left
 * (or the domain is gone), 3 when one was still active at the deadline. Each poll is one `virsh`:
 * its `Job type:` line is read by the shell, not by a pipeline of processes.
 */
const END_JOB_SCRIPT = [
  'u=$1; d=$2; shift 2',
  'set -f',
  'virsh -q -c "$u" domjobabort --domain "$d" >/dev/null 2>&1',
  // QEMU may still hold the scratch file for a moment: unlinking it meanwhile is harmless.
  'rm -f -- "$@"',
  'i=0',
  'while [ $i -lt 600 ]; do',
  '  t=$(virsh -q -c "$u" domjobinfo --domain "$d" 2>/dev/null)',
  '  case $t in *"Job type:"*) t=${t#*Job type:}; set -- $t; t=${1:-} ;; *) t="" ;; esac',
  '  case $t in ""|[Nn]one|NONE|[Cc]ompleted|COMPLETED|[Ff]ailed|FAILED|[Cc]ancelled|CANCELLED) exit 0 ;; esac',
  '  sleep 0.05; i=$((i+1))',
  'done',
  'exit 3',
].join('\n');

/**
 * Ends the domain's backup job, if one runs, and removes its files (one remote command). Safe to
 * call when no job runs. A job still active after 30 s is left to libvirt (as before: QEMU ends it).
 */
export async function endBackupJob(run: Run, files: string[]): Promise<void> {
  const { cmd } = run.ctx;
  await cmd.tryRun(['sh', '-c', END_JOB_SCRIPT, 'sh', cmd.uri, run.domain.name, ...files]);
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
