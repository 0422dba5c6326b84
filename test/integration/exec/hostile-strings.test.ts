import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import type { Executor } from '../../../src/ports/executor';
import { sshTarget } from './ssh-target';

const dir = mkdtempSync('/var/tmp/ii-hostile-');
const canary = `${dir}/CANARY`;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Arguments that a shell would interpret if they were not quoted. */
const HOSTILE = [
  `'; touch ${canary} #`,
  `"; touch ${canary} #`,
  `$(touch ${canary})`,
  `\`touch ${canary}\``,
  `a\ntouch ${canary}`,
  `a\r\ntouch ${canary}`,
  `x | touch ${canary}`,
  `x && touch ${canary}`,
  `x > ${canary}`,
  `\${IFS}touch\${IFS}${canary}`,
  '$HOME',
  '${HOME}',
  '~',
  '!!',
  '*',
  '/*',
  '?',
  '[a-z]*',
  '{a,b}',
  '--help',
  '-n',
  '-e',
  '',
  ' ',
  ' leading and trailing ',
  'tab\there',
  `it's "quoted" and 'single' and \\back\\slash\\`,
  "'",
  "''",
  '\\',
  'ünïcødé ✓ 日本語 🙂',
  '\u00a0non-breaking\u2028line-separator',
  '%s %d %n',
  '#not a comment',
  `;touch ${canary};`,
  `\\'\\"$(touch ${canary})`,
];

async function checkExecutor(executor: Executor): Promise<void> {
  // printf '%s\0' prints every argument followed by NUL: the output splits back into the exact argv.
  const result = await executor.run(['printf', '%s\\0', ...HOSTILE]);
  expect(result.exitCode).toBe(0);
  expect(result.stderr).toBe('');
  const parts = result.stdout.split('\u0000');
  expect(parts.pop()).toBe('');
  expect(parts).toEqual(HOSTILE);
  // One at a time, too, as the only argument (nothing merges or splits).
  for (const argument of HOSTILE) {
    const single = await executor.run(['printf', '%s', argument]);
    expect(Buffer.from(single.stdout, 'utf8').equals(Buffer.from(argument, 'utf8'))).toBe(true);
  }
  // Hostile program names and paths are not interpreted either.
  const missing = await executor.run([`${dir}/no such program; touch ${canary}`]).catch((error: unknown) => error);
  expect(missing).toBeDefined();
  expect(existsSync(canary)).toBe(false);
}

const target = await sshTarget();

describe('hostile strings as arguments are passed byte-for-byte, never interpreted', () => {
  it('the canary works: the same strings spliced into a shell line unquoted do run commands', async () => {
    const result = await createLocalExecutor().run(['sh', '-c', `printf %s ${HOSTILE[2]}`]);
    expect(result.exitCode).toBe(0);
    expect(existsSync(canary)).toBe(true);
    rmSync(canary);
  });

  it('through the local executor', async () => {
    await checkExecutor(createLocalExecutor());
  });

  const sshIt = 'skip' in target ? it.skip : it;
  sshIt(`through the SSH executor${'skip' in target ? ` (skipped: ${target.skip})` : ''}`, async () => {
    if ('skip' in target) return;
    const executor = createSshExecutor(target.connection);
    try {
      await checkExecutor(executor);
    } finally {
      await executor.close();
    }
  });
});
