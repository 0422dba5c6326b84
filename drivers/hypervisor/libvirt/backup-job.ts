/**
 * The parts of a live capture shared by the file/stream capture (capture.ts) and the chunked
 * capture (capture-chunks.ts): the guest-agent freeze window and the backup job's start and end.
 * @module
 */
import { shellCommand } from '../../exec/quote';
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
 * `sh -c` script: aborts the job of domain `$2` (libvirt URI `$1`) and asks at once whether one is
 * still active, in ONE `virsh` (`$3`: the command string `domjobabort …; domjobinfo …`), removes the
 * files named by the remaining arguments, and while a job is active polls every 0.05 s (30 s at
 * most), in one remote command instead of a round trip per step. A pull-mode job is gone when its
 * abort returns (libvirt 9: `domjobinfo` right after it says None), so the usual end is one `virsh`
 * process, about 40 ms of CPU on the hypervisor, where an abort and a poll were two. Exits 0 when no
 * job is left (or the domain is gone), 3 when one was still active at the deadline. The `Job type:`
 * line is read by the shell, not by a pipeline of processes.
 */
const END_JOB_SCRIPT = [
  'u=$1; d=$2; c=$3; shift 3',
  'set -f',
  't=$(virsh -q -c "$u" "$c" 2>/dev/null)',
  // QEMU may still hold the scratch file for a moment: unlinking it meanwhile is harmless.
  'rm -f -- "$@"',
  'i=0',
  'while :; do',
  '  case $t in *"Job type:"*) t=${t#*Job type:}; set -- $t; t=${1:-} ;; *) t="" ;; esac',
  '  case $t in ""|[Nn]one|NONE|[Cc]ompleted|COMPLETED|[Ff]ailed|FAILED|[Cc]ancelled|CANCELLED) exit 0 ;; esac',
  '  [ $i -lt 600 ] || exit 3',
  '  sleep 0.05; i=$((i+1))',
  '  t=$(virsh -q -c "$u" domjobinfo --domain "$d" 2>/dev/null)',
  'done',
].join('\n');

/**
 * Ends the domain's backup job, if one runs, and removes its files (one remote command). Safe to
 * call when no job runs. A job still active after 30 s is left to libvirt (as before: QEMU ends it).
 */
export async function endBackupJob(run: Run, files: string[]): Promise<void> {
  const { cmd } = run.ctx;
  const domain = ['--domain', run.domain.name];
  const abortAndAsk = `${shellCommand(['domjobabort', ...domain])}; ${shellCommand(['domjobinfo', ...domain])}`;
  await cmd.tryRun(['sh', '-c', END_JOB_SCRIPT, 'sh', cmd.uri, run.domain.name, abortAndAsk, ...files]);
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
