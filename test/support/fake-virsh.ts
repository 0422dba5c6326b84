/**
 * A fake virsh answering the driver's batched questions (`drivers/hypervisor/libvirt/virsh-batch.ts`)
 * for unit tests of code that runs them through a fake executor.
 */
import type { HypervisorCapabilities } from '../../drivers/hypervisor/libvirt/inspect';
import type { ExecResult, Executor } from '../../src/ports/executor';

/** How the fake answers one command of a batch: what it prints, or the error virsh prints. */
export type VirshAnswer = { stdout: string } | { error: string };

/**
 * Answers `virsh -q -c URI 'CMD; echo -- MARK; echo --err -- MARK; …'` (`commandString` is argv[4])
 * as virsh does: each command's output, its marker on stdout right after it (no newline, as with
 * `-q`) and `error: MARK` on stderr. `answer` gets each command's name (unanswered: an error).
 * Exits 1 when a command failed.
 */
export function answerVirshBatch(commandString: string, answer: (command: string) => VirshAnswer | undefined): ExecResult {
  let stdout = '';
  let stderr = '';
  let failed = false;
  for (const part of commandString.split('; ')) {
    const mark = part.replace(/^echo (--err )?-- /, '').replace(/'/g, '');
    if (part.startsWith('echo --err -- ')) stderr += `error: ${mark}\n`;
    else if (part.startsWith('echo -- ')) stdout += mark;
    else {
      const given = answer(part.replace(/'/g, '').split(' ')[0] ?? '');
      if (given && 'stdout' in given) stdout += given.stdout;
      else {
        failed = true;
        stderr += `error: ${given?.error ?? 'unknown command'}\n`;
      }
    }
  }
  return { exitCode: failed ? 1 : 0, stdout, stderr };
}

/**
 * An executor of a fake hypervisor: records every argv in `calls`, answers batched virsh questions
 * from `answers` (by command name), `qemu-img` with `qemuImg(argv)`, and anything else exit 127.
 */
export function fakeVirshExecutor(
  calls: string[][],
  answers: Record<string, VirshAnswer>,
  qemuImg: (argv: readonly string[]) => ExecResult,
): Executor {
  return {
    label: 'fake',
    async run(argv) {
      calls.push([...argv]);
      if (argv[0] === 'virsh' && argv.length === 5) return answerVirshBatch(String(argv[4]), (command) => answers[command]);
      if (argv[0] === 'qemu-img') return qemuImg(argv);
      return { exitCode: 127, stdout: '', stderr: `unexpected ${argv.join(' ')}` };
    },
    async stream() {
      throw new Error('not used');
    },
    async close() {},
  };
}

/** Capabilities of a libvirt 9.0 / QEMU 7.2 hypervisor with backups, for inspections against the fake. */
export const TEST_CAPABILITIES: HypervisorCapabilities = {
  libvirtVersion: '9.0.0',
  qemuVersion: '7.2.0',
  backup: true,
  zstd: true,
  liveMethods: ['pull-backup'],
};
