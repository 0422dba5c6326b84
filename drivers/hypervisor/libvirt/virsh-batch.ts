/**
 * Several libvirt questions in ONE `virsh` process: a command string of `;`-separated commands,
 * each word quoted by the one quoting function, each answer followed by a random marker on stdout
 * and stderr. One process start and one libvirt connection instead of one per question: each
 * costs about 40 ms of CPU on the hypervisor (and an SSH session when it is remote).
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { ExecOptions } from '../../../src/ports/executor';
import { shellCommand, shellQuote } from '../../exec/quote';
import type { HostCommands } from './commands';

/** What one remote command (or one batched virsh question) printed. */
export interface SessionRecord {
  name: string;
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** One libvirt question: the record name and the virsh command (without `virsh -c URI`). */
export interface VirshQuestion {
  name: string;
  words: readonly string[];
}

/** The marker printed after the answer of `question` (the nonce makes it unguessable to the domain's XML). */
function marker(question: VirshQuestion, nonce: string): string {
  return `@@${nonce}-${question.name}`;
}

/**
 * The questions as ONE virsh command string (virsh runs `;`-separated commands in one process,
 * going on after a failed one). Every word is quoted by the one quoting function: virsh's command
 * strings understand the same single quotes and backslashes as the shell (checked against
 * hostile strings). After each command, `echo` prints its marker on stdout and on stderr, so the
 * answers can be told apart.
 */
export function virshCommandString(questions: readonly VirshQuestion[], nonce: string): string {
  return questions
    .map((q) => {
      const mark = shellQuote(marker(q, nonce));
      return `${shellCommand(q.words)}; echo -- ${mark}; echo --err -- ${mark}`;
    })
    .join('; ');
}

/**
 * Splits the one virsh's output into a record per question. A question's stdout is what precedes
 * its marker (virsh -q prints it with no newline); its stderr is the lines before the line of its
 * marker. virsh gives no exit code per command: one that failed printed its error (`error: …`),
 * so a question with such a line, or with only stderr and no answer, counts as failed (exit code
 * 1), and so does one whose marker never came (virsh stopped: its stderr says why).
 */
export function splitVirshAnswers(record: SessionRecord, questions: readonly VirshQuestion[], nonce: string): SessionRecord[] {
  let out = record.stdout;
  let err = record.stderr;
  return questions.map((question) => {
    const mark = marker(question, nonce);
    const outAt = out.indexOf(mark);
    const errAt = err.indexOf(mark);
    if (outAt < 0 || errAt < 0) {
      const failed = { name: question.name, exitCode: record.exitCode === 0 ? 1 : record.exitCode, stdout: '', stderr: err };
      out = '';
      err = '';
      return failed;
    }
    const stdout = out.slice(0, outAt);
    out = out.slice(outAt + mark.length).replace(/^\n/, '');
    const lineStart = err.lastIndexOf('\n', errAt) + 1;
    const lineEnd = err.indexOf('\n', errAt);
    const stderr = err.slice(0, lineStart);
    err = lineEnd < 0 ? '' : err.slice(lineEnd + 1);
    // virsh prints a failure as `error: …` (translated under some locales, when the command then
    // printed nothing on stdout); a warning beside an answer is not a failure.
    const failed = /^error: /m.test(stderr) || (stdout === '' && stderr.trim() !== '');
    return { name: question.name, exitCode: failed ? 1 : 0, stdout, stderr };
  });
}

/**
 * Asks `questions` through one `virsh` on the hypervisor and returns a record per question, by
 * name (a failed one has exit code 1 and its error on stderr; see {@link splitVirshAnswers}).
 */
export async function askVirsh(
  cmd: HostCommands,
  questions: readonly VirshQuestion[],
  options: ExecOptions = {},
): Promise<Map<string, SessionRecord>> {
  const nonce = randomBytes(16).toString('hex');
  const result = await cmd.tryVirsh([virshCommandString(questions, nonce)], options);
  const record = { name: 'virsh', exitCode: result.exitCode ?? 1, stdout: result.stdout, stderr: result.stderr };
  return new Map(splitVirshAnswers(record, questions, nonce).map((answer) => [answer.name, answer]));
}
