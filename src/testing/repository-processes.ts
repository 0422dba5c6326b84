/**
 * The multi-process case of the repository conformance suite. The atomic operations of the
 * repository ports must hold for several processes sharing one database (several panel workers on
 * one SQLite file, several servers on one PostgreSQL), which a single process cannot show: a
 * synchronous read-then-insert never interleaves inside one process, and a deferred SQLite
 * transaction only meets `SQLITE_BUSY_SNAPSHOT` when another process writes between its read and
 * its write.
 *
 * The host writes a small child module that opens its repositories from JSON arguments and hands
 * them to {@link serveRepositories}:
 *
 * ```ts
 * // test/repositories.child.ts
 * import { serveRepositories } from 'instance-images/testing';
 * serveRepositories((args) => createMyRepositories({ filename: (args as { filename: string }).filename }));
 * ```
 *
 * and registers the case, which forks that module several times (`child_process.fork`) against one
 * shared database, releases every child at the same moment, round after round, and checks what
 * they did together:
 *
 * ```ts
 * testRepositoriesAcrossProcesses({ describe, it }, {
 *   name: 'my-db',
 *   childModule: new URL('./repositories.child.ts', import.meta.url),
 *   async setup() {
 *     const filename = freshDatabaseFile();
 *     return { args: { filename }, repositories: createMyRepositories({ filename }) };
 *   },
 * });
 * ```
 * @module
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Repositories } from '../ports/repositories';
import { makeImage, makeTask } from './fixtures';
import { makeImageTransfer } from './image-move-cases';
import type { TestApi } from './repository-suite';

/** A JSON value: what a child receives as the arguments of its factory. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** One shared database prepared by {@link ProcessSuiteOptions.setup}. */
export interface SharedDatabase {
  /** Sent to every child's factory (a file name, a connection string and schema, …). */
  args: JsonValue;
  /** The parent's own repositories on the same database: the case seeds and checks through them. */
  repositories: Repositories;
}

/** Options of {@link testRepositoriesAcrossProcesses} and {@link runRepositoriesAcrossProcesses}. */
export interface ProcessSuiteOptions {
  /** Shown in the case's name. */
  name: string;
  /** The module each child runs: it calls {@link serveRepositories}. A path or a `file:` URL. */
  childModule: string | URL;
  /**
   * Node options of the children. Default: `['--import', 'tsx']` for a `.ts`/`.mts`/`.cts` module
   * (tsx must be installed), none otherwise.
   */
  execArgv?: string[];
  /** Prepares one fresh, empty, shared database for a run. */
  setup(): Promise<SharedDatabase> | SharedDatabase;
  /** Disposes of it. Default: `repositories.close?.()`. */
  teardown?(database: SharedDatabase): Promise<void>;
  /** Child processes (default 4, at least 2). */
  processes?: number;
  /** Rounds, each on fresh records (default 10). */
  rounds?: number;
  /** Per-case timeout in ms (default 120 000). */
  timeout?: number;
}

/** What the children are asked to do in one round. */
interface RoundPlan {
  round: number;
  /** The accounts whose caps they race for, in the order every child walks them, and the cap of each. */
  accountIds: string[];
  max: number;
  /** Capped inserts each child attempts per account. */
  attempts: number;
  /** Images in `creating` every child tries to move to `available`. */
  imageIds: string[];
  /** Tasks in `running` every child tries to move to `completed`. */
  taskIds: string[];
  /** Pending transfers (more than the cap) to `taker` that every child tries to accept, capped at `max`. */
  transferIds: string[];
  taker: string;
}

/** What one child reports after a round. */
interface RoundReport {
  inserted: string[];
  imagesWon: string[];
  tasksWon: string[];
  transfersWon: string[];
  errors: string[];
}

type ParentMessage = { type: 'open'; args: JsonValue } | { type: 'round'; plan: RoundPlan; child: number } | { type: 'close' };
type ChildMessage = { type: 'ready' } | { type: 'report'; report: RoundReport } | { type: 'failed'; error: string } | { type: 'closed' };

/** The outcome of a run: the rounds played and the violations found (empty when it passed). */
export interface ProcessRunResult {
  rounds: number;
  violations: string[];
}

/** Accounts per round: every child walks them in the same order, so they meet at each cap. */
const ACCOUNTS_PER_ROUND = 10;
const CAP = 2;
const ATTEMPTS_PER_ACCOUNT = 2;
const SUBJECTS_PER_ROUND = 12;
/** Transfers offered to one account per round (its cap is {@link CAP}). */
const TRANSFERS_PER_ROUND = 5;

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.name}${typeof code === 'string' ? ` ${code}` : ''}: ${error.message}`;
  }
  return String(error);
}

/**
 * Serves repositories to the multi-process conformance case; call it once from the child module.
 * `open` receives the JSON `args` of {@link SharedDatabase} and returns repositories on that
 * database. The process exits after the case closes it.
 * @throws when the module was not started by the case (no IPC channel).
 */
export function serveRepositories(open: (args: JsonValue) => Promise<Repositories> | Repositories): void {
  const send = process.send?.bind(process);
  if (!send) throw new Error('serveRepositories() must run in a child forked by the multi-process conformance case');
  let repositories: Repositories | null = null;
  process.on('message', (message: ParentMessage) => {
    void (async () => {
      try {
        if (message.type === 'open') {
          repositories = await open(message.args);
          send({ type: 'ready' } satisfies ChildMessage);
        } else if (message.type === 'round') {
          if (!repositories) throw new Error('round before open');
          send({ type: 'report', report: await playRound(repositories, message.plan, message.child) } satisfies ChildMessage);
        } else {
          await repositories?.close?.();
          send({ type: 'closed' } satisfies ChildMessage, () => process.disconnect());
        }
      } catch (error) {
        send({ type: 'failed', error: describeError(error) } satisfies ChildMessage);
      }
    })();
  });
}

/** One child's share of a round: capped inserts and compare-and-sets, all at once. */
async function playRound(repos: Repositories, plan: RoundPlan, child: number): Promise<RoundReport> {
  const report: RoundReport = { inserted: [], imagesWon: [], tasksWon: [], transfersWon: [], errors: [] };
  const guarded = async (operation: () => Promise<void>) => {
    try {
      await operation();
    } catch (error) {
      report.errors.push(describeError(error));
    }
  };
  const now = new Date();
  const work: Promise<void>[] = [];
  work.push(
    (async () => {
      for (const accountId of plan.accountIds) {
        const attempts = Array.from({ length: plan.attempts }, () => makeImage({ accountId, name: `child-${child}` }));
        await Promise.all(
          attempts.map((image) =>
            guarded(async () => {
              if (await repos.images.insertIfUnderLimit(image, { accountId, max: plan.max })) report.inserted.push(image.id);
            }),
          ),
        );
      }
    })(),
  );
  for (const id of plan.imageIds) {
    work.push(
      guarded(async () => {
        if (await repos.images.transition(id, ['creating'], 'available', { description: `child-${child}`, sizeBytes: 1024 + child }, now))
          report.imagesWon.push(id);
      }),
    );
  }
  for (const id of plan.taskIds) {
    work.push(
      guarded(async () => {
        if (await repos.tasks.transition(id, ['running'], 'completed', { errorMessage: `child-${child}`, finishedAt: now }, now))
          report.tasksWon.push(id);
      }),
    );
  }
  for (const id of plan.transferIds) {
    work.push(
      guarded(async () => {
        if (await repos.imageTransfers.accept(id, { accountId: plan.taker, max: plan.max }, new Date())) report.transfersWon.push(id);
      }),
    );
  }
  await Promise.all(work);
  return report;
}

/** A forked child and a way to wait for its next message. */
class Child {
  private readonly inbox: ChildMessage[] = [];
  private waiter: ((message: ChildMessage) => void) | null = null;
  private exit: string | null = null;
  private stderr = '';

  constructor(readonly process: ChildProcess) {
    process.on('message', (message: ChildMessage) => this.deliver(message));
    process.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-4000)));
    process.on('exit', (code, signal) => {
      this.exit = `exited (${signal ?? code})${this.stderr ? `: ${this.stderr.trim()}` : ''}`;
      this.deliver({ type: 'failed', error: this.exit });
    });
  }

  private deliver(message: ChildMessage): void {
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter(message);
    } else this.inbox.push(message);
  }

  /** The next message, or an error when the child exits or fails first. */
  async next<T extends ChildMessage['type']>(type: T): Promise<Extract<ChildMessage, { type: T }>> {
    const message =
      this.inbox.shift() ??
      (this.exit ? { type: 'failed' as const, error: this.exit } : await new Promise<ChildMessage>((resolve) => (this.waiter = resolve)));
    if (message.type === 'failed') throw new Error(`a child process failed: ${message.error}`);
    if (message.type !== type) throw new Error(`a child process answered ${message.type} instead of ${type}`);
    return message as Extract<ChildMessage, { type: T }>;
  }

  send(message: ParentMessage): void {
    this.process.send(message);
  }
}

function startChildren(options: ProcessSuiteOptions, count: number): Child[] {
  const modulePath =
    options.childModule instanceof URL
      ? fileURLToPath(options.childModule)
      : options.childModule.startsWith('file:')
        ? fileURLToPath(options.childModule)
        : options.childModule;
  const execArgv = options.execArgv ?? (/\.[cm]?ts$/.test(modulePath) ? ['--import', 'tsx'] : []);
  return Array.from({ length: count }, () => new Child(fork(modulePath, [], { execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })));
}

/** Seeds a round's subjects through the parent's repositories. */
async function seedRound(repos: Repositories, round: number, attempts: number): Promise<RoundPlan> {
  const accountIds = Array.from({ length: ACCOUNTS_PER_ROUND }, (_, i) => `procs-${round}-${i}-${randomUUID()}`);
  const taker = `taker-${round}-${randomUUID()}`;
  const plan: RoundPlan = { round, accountIds, max: CAP, attempts, imageIds: [], taskIds: [], transferIds: [], taker };
  for (let i = 0; i < SUBJECTS_PER_ROUND; i++) {
    const image = makeImage({ accountId: `subjects-${round}` });
    const task = makeTask({ status: 'running' });
    await repos.images.insert(image);
    await repos.tasks.insert(task);
    plan.imageIds.push(image.id);
    plan.taskIds.push(task.id);
  }
  for (let i = 0; i < TRANSFERS_PER_ROUND; i++) {
    const image = makeImage({ accountId: `giver-${round}`, status: 'available' });
    await repos.images.insert(image);
    const transfer = makeImageTransfer({
      imageId: image.id,
      fromAccountId: image.accountId as string,
      toAccountId: taker,
      expiresAt: new Date(Date.now() + 3_600_000),
    });
    await repos.imageTransfers.insert(transfer);
    plan.transferIds.push(transfer.id);
  }
  return plan;
}

/** Checks one round's reports against the shared database; returns the violations. */
async function checkRound(repos: Repositories, plan: RoundPlan, reports: RoundReport[]): Promise<string[]> {
  const violations: string[] = [];
  const at = `round ${plan.round + 1}`;
  reports.forEach((report, child) => {
    for (const error of report.errors.slice(0, 3)) violations.push(`${at}: child ${child} threw ${error}`);
    if (report.errors.length > 3) violations.push(`${at}: child ${child} threw ${report.errors.length - 3} more errors`);
  });
  const inserted = new Set(reports.flatMap((r) => r.inserted));
  for (const accountId of plan.accountIds) {
    const mine = (await repos.images.list({ accountId }, { limit: 1000 })).items;
    const reported = mine.filter((image) => inserted.has(image.id)).length;
    const stored = await repos.images.countActive(accountId);
    if (stored !== plan.max || reported !== stored || mine.length !== stored) {
      violations.push(
        `${at}: ${reports.length} processes racing insertIfUnderLimit against a cap of ${plan.max} left ${stored} images (${reported} reported inserted) for ${accountId}`,
      );
    }
  }
  const stray = [...inserted].length - plan.accountIds.length * plan.max;
  if (stray > 0) violations.push(`${at}: ${stray} more inserts reported than the caps allow`);
  for (const [kind, ids, wins] of [
    ['image', plan.imageIds, reports.map((r) => r.imagesWon)],
    ['task', plan.taskIds, reports.map((r) => r.tasksWon)],
  ] as const) {
    for (const id of ids) {
      const winners = wins.flatMap((won, child) => (won.includes(id) ? [child] : []));
      if (winners.length !== 1) {
        violations.push(`${at}: ${kind} ${id}: ${winners.length} processes won the same transition (exactly one must)`);
        continue;
      }
      const record = kind === 'image' ? await repos.images.get(id) : await repos.tasks.get(id);
      const mark = record && ('errorMessage' in record ? record.errorMessage : record.description);
      if (mark !== `child-${winners[0]}`)
        violations.push(`${at}: ${kind} ${id} holds ${JSON.stringify(mark)}, not the winner's (child-${winners[0]}) patch`);
    }
  }
  violations.push(...(await checkTransfers(repos, plan, reports, at)));
  return violations;
}

/** The transfers of a round: each accepted by at most one child, exactly the cap moved, owners consistent. */
async function checkTransfers(repos: Repositories, plan: RoundPlan, reports: RoundReport[], at: string): Promise<string[]> {
  const violations: string[] = [];
  let won = 0;
  for (const id of plan.transferIds) {
    const winners = reports.filter((r) => r.transfersWon.includes(id)).length;
    if (winners > 1) violations.push(`${at}: transfer ${id} was accepted by ${winners} processes (at most one may)`);
    won += Math.min(winners, 1);
    const transfer = await repos.imageTransfers.get(id);
    const owner = transfer && (await repos.images.get(transfer.imageId))?.accountId;
    const expected = transfer?.status === 'accepted' ? plan.taker : transfer?.fromAccountId;
    if (owner !== expected || (transfer?.status === 'accepted') !== winners > 0)
      violations.push(
        `${at}: transfer ${id} is ${transfer?.status} (reported accepted ${winners} times) and its image is owned by ${owner}`,
      );
  }
  const stored = await repos.images.countActive(plan.taker);
  if (won !== plan.max || stored !== plan.max)
    violations.push(
      `${at}: ${reports.length} processes accepting ${plan.transferIds.length} transfers against a cap of ${plan.max} moved ${stored} images (${won} reported)`,
    );
  return violations;
}

/**
 * Runs the multi-process case once and returns what it found instead of throwing (used to prove
 * the case catches broken adapters). {@link testRepositoriesAcrossProcesses} asserts it is empty.
 */
export async function runRepositoriesAcrossProcesses(options: ProcessSuiteOptions): Promise<ProcessRunResult> {
  const processes = Math.max(2, options.processes ?? 4);
  const rounds = Math.max(1, options.rounds ?? 10);
  const database = await options.setup();
  const children = startChildren(options, processes);
  const violations: string[] = [];
  let played = 0;
  try {
    for (const child of children) child.send({ type: 'open', args: database.args });
    for (const child of children) await child.next('ready');
    for (let round = 0; round < rounds; round++) {
      const plan = await seedRound(database.repositories, round, ATTEMPTS_PER_ACCOUNT);
      // Every child gets its plan before any answer is awaited: they start together.
      children.forEach((child, index) => child.send({ type: 'round', plan, child: index }));
      const reports: RoundReport[] = [];
      for (const child of children) reports.push((await child.next('report')).report);
      played++;
      violations.push(...(await checkRound(database.repositories, plan, reports)));
    }
    for (const child of children) child.send({ type: 'close' });
    for (const child of children) await child.next('closed');
  } finally {
    for (const child of children) if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill();
    if (options.teardown) await options.teardown(database);
    else await database.repositories.close?.();
  }
  return { rounds: played, violations };
}

/**
 * Registers the multi-process case with the caller's test framework: {@link ProcessSuiteOptions.processes}
 * children (default 4) on one shared database race capped inserts (10 accounts walked in the same
 * order, a cap of 2 each, 2 attempts per child and account),
 * compare-and-set transitions of images and tasks, and accepts of 5 image transfers to one account
 * with a cap of 2, for {@link ProcessSuiteOptions.rounds} rounds
 * (default 10). It fails when a cap is exceeded or not reached, when a transition has no winner or
 * two, when a winner's patch is not what is stored, or when any call throws (e.g. `SQLITE_BUSY`).
 */
export function testRepositoriesAcrossProcesses(api: TestApi, options: ProcessSuiteOptions): void {
  api.describe(`repository conformance across processes: ${options.name}`, () => {
    api.it(
      `${options.processes ?? 4} processes on one database: the cap, image and task transitions hold without errors`,
      async () => {
        const result = await runRepositoriesAcrossProcesses(options);
        assert.deepEqual(
          result.violations,
          [],
          `the repositories broke their atomicity across processes:\n${result.violations.join('\n')}`,
        );
      },
      options.timeout ?? 120_000,
    );
  });
}
