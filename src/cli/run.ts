/**
 * The operator CLI (`npx instance-images <command>`): storage health, the image browser,
 * reconcile (dry run by default), recovery, the usage report and the task list, against the SDK a
 * host's config module builds. Arguments are parsed with `node:util`'s `parseArgs` (no
 * dependency); every command takes `--json`.
 *
 * Exit codes: 0 done; 1 the command failed (an error with its code on stderr); 2 bad usage;
 * 3 a health check found a problem; 4 reconcile found something and `--fail-on-findings` was set.
 * @module
 */
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isInstanceImagesError } from '../errors';
import type { InstanceImages } from '../create-instance-images';
import type { Actor } from '../services/actor';
import type { ListTasksQuery } from '../services/images';
import { csv, json, table, type Column } from './output';

/** Where the CLI writes, and how it finds the SDK (replaceable in tests). */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** The working directory the default config is looked up in. */
  cwd: string;
  /** Loads the SDK from a config module path. @default dynamic import of the module */
  load?: (path: string) => Promise<InstanceImages>;
}

/** Config module names looked up in the working directory, in order. */
export const CONFIG_FILES = ['instance-images.config.mjs', 'instance-images.config.js', 'instance-images.config.cjs'] as const;

/** Exit codes of {@link runCli}. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unhealthy: 3, findings: 4 } as const;

const USAGE = `Usage: instance-images <command> [options]

Commands:
  storages                          list the image storages
  health [storageId]                check one storage, or every storage (exit 3 when one is unhealthy)
  browse <storageId>                the files really on a storage, matched with their records
  reconcile <storageId>             scan a storage (dry run unless --apply)
  recover                           fail interrupted tasks and remove their leftovers
  usage --from <date> --to <date>   the usage report (Images section)
  tasks                             the task list

Options:
  --config <path>        the config module (default: ./instance-images.config.{mjs,js,cjs})
  --json                 machine-readable output
  --hypervisor <id>      health/browse/reconcile through this hypervisor
  --prefix <key>         browse: only keys below this prefix
  --limit <n>            browse/tasks: page size
  --apply                reconcile: apply the chosen fixes (default: dry run)
  --delete-orphans       reconcile: delete files no record points at
  --delete-leftovers     reconcile: delete old temp files and incomplete uploads
  --mark-missing         reconcile: mark images whose file is missing as error
  --fail-on-findings     reconcile: exit 4 when anything was found
  --account <id>         usage/tasks: one account
  --format <f>           usage: table (default), csv or json
  --status <s>, --type <t>   tasks: filters
  -h, --help             this text

The config module's default export is the SDK (what createInstanceImages returns) or a function,
possibly async, returning it. The CLI acts as an operator and closes the SDK when done.
`;

const OPTIONS = {
  config: { type: 'string' },
  json: { type: 'boolean' },
  hypervisor: { type: 'string' },
  prefix: { type: 'string' },
  limit: { type: 'string' },
  apply: { type: 'boolean' },
  'delete-orphans': { type: 'boolean' },
  'delete-leftovers': { type: 'boolean' },
  'mark-missing': { type: 'boolean' },
  'fail-on-findings': { type: 'boolean' },
  account: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  format: { type: 'string' },
  status: { type: 'string' },
  type: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>['values'];

/** A usage error: exit 2 with the message and a hint. */
class UsageError extends Error {}

/** Finds the config module: `--config`, else the first of {@link CONFIG_FILES} in `cwd`. */
function configPath(values: Values, cwd: string): string {
  if (values.config !== undefined) {
    const path = isAbsolute(values.config) ? values.config : resolve(cwd, values.config);
    if (!existsSync(path)) throw new UsageError(`The config module ${values.config} does not exist`);
    return path;
  }
  const found = CONFIG_FILES.map((name) => resolve(cwd, name)).find((path) => existsSync(path));
  if (!found) throw new UsageError(`No config module: write ${CONFIG_FILES[0]} in this directory, or pass --config <path>`);
  return found;
}

/** Imports the config module and returns the SDK it builds. */
async function importSdk(path: string): Promise<InstanceImages> {
  const module = (await import(pathToFileURL(path).href)) as { default?: unknown };
  let value = module.default;
  if (typeof value === 'function') value = await (value as () => unknown)();
  const sdk = value as Partial<InstanceImages> | null | undefined;
  if (!sdk || typeof sdk !== 'object' || !sdk.storages || !sdk.settings || !sdk.images || typeof sdk.close !== 'function') {
    throw new UsageError(`${path} must export default the SDK (what createInstanceImages returns) or a function returning it`);
  }
  return sdk as InstanceImages;
}

const positiveInt = (text: string | undefined, name: string): number | undefined => {
  if (text === undefined) return undefined;
  if (!/^[1-9]\d{0,5}$/.test(text)) throw new UsageError(`--${name} must be a positive integer`);
  return Number(text);
};

const date = (text: string | undefined, name: string): Date => {
  if (text === undefined) throw new UsageError(`usage needs --${name} <date> (e.g. 2026-11-01 or 2026-11-01T00:00:00Z)`);
  const at = new Date(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text);
  if (Number.isNaN(at.getTime())) throw new UsageError(`--${name} is not a date: ${JSON.stringify(text)}`);
  return at;
};

/** One command, given the SDK and an operator actor; returns the exit code. */
type Command = (sdk: InstanceImages, actor: Actor, args: { positionals: string[]; values: Values; io: CliIo }) => Promise<number>;

const needStorage = (positionals: string[], command: string): string => {
  const id = positionals[0];
  if (!id) throw new UsageError(`${command} needs a storage id (see: instance-images storages)`);
  return id;
};

const COMMANDS: Record<string, Command> = {
  async storages(sdk, actor, { values, io }) {
    const storages = await sdk.storages.listStorages(actor);
    if (values.json) io.stdout(json(storages));
    else
      io.stdout(
        table(storages, [
          { header: 'ID', value: (s) => s.id },
          { header: 'NAME', value: (s) => s.name },
          { header: 'DRIVER', value: (s) => s.driver },
          { header: 'PURPOSE', value: (s) => s.purpose },
          { header: 'ENABLED', value: (s) => s.enabled },
        ]),
      );
    return EXIT.ok;
  },

  async health(sdk, actor, { positionals, values, io }) {
    const ids = positionals[0] ? [positionals[0]] : (await sdk.storages.listStorages(actor)).map((s) => s.id);
    const results = [];
    for (const storageId of ids) {
      if (!values.json) io.stderr(`checking ${storageId}...\n`);
      results.push({ storageId, ...(await sdk.storages.checkHealth(actor, storageId, values.hypervisor)) });
    }
    if (values.json) io.stdout(json(results));
    else
      io.stdout(
        table(results, [
          { header: 'STORAGE', value: (r) => r.storageId },
          { header: 'OK', value: (r) => r.ok },
          { header: 'FREE BYTES', value: (r) => r.freeBytes },
          { header: 'MESSAGE', value: (r) => r.message },
        ]),
      );
    return results.every((r) => r.ok) ? EXIT.ok : EXIT.unhealthy;
  },

  async browse(sdk, actor, { positionals, values, io }) {
    const storageId = needStorage(positionals, 'browse');
    const limit = positiveInt(values.limit, 'limit');
    const page = await sdk.storages.browse(actor, storageId, {
      ...(values.hypervisor ? { hypervisorId: values.hypervisor } : {}),
      ...(values.prefix ? { prefix: values.prefix } : {}),
      ...(limit ? { limit } : {}),
    });
    if (values.json) io.stdout(json(page));
    else {
      io.stdout(
        table(page.items, [
          { header: 'KEY', value: (f) => f.key },
          { header: 'SIZE', value: (f) => f.size },
          { header: 'KIND', value: (f) => f.kind },
          { header: 'IMAGE', value: (f) => f.imageId },
          { header: 'MESSAGE', value: (f) => f.message },
        ]),
      );
      if (page.nextCursor) io.stderr('more files: narrow with --prefix, or use the HTTP API to page on\n');
    }
    return EXIT.ok;
  },

  async reconcile(sdk, actor, { positionals, values, io }) {
    const storageId = needStorage(positionals, 'reconcile');
    const dryRun = !values.apply;
    if (!values.json) io.stderr(`scanning ${storageId}${dryRun ? ' (dry run: nothing is changed; --apply to fix)' : ''}...\n`);
    const findings = await sdk.storages.reconcile(actor, storageId, {
      ...(values.hypervisor ? { hypervisorId: values.hypervisor } : {}),
      deleteOrphans: values['delete-orphans'] ?? false,
      deleteLeftovers: values['delete-leftovers'] ?? false,
      markMissing: values['mark-missing'] ?? false,
      dryRun,
    });
    if (values.json) io.stdout(json(findings));
    else
      io.stdout(
        findings.length === 0
          ? 'nothing to reconcile\n'
          : table(findings, [
              { header: 'KIND', value: (f) => f.kind },
              { header: 'KEY', value: (f) => f.key },
              { header: 'IMAGE', value: (f) => f.imageId },
              { header: 'ACTION', value: (f) => (f.dryRun && f.action !== 'none' ? `${f.action} (dry run)` : f.action) },
              { header: 'MESSAGE', value: (f) => f.message },
            ]),
      );
    return findings.length > 0 && values['fail-on-findings'] ? EXIT.findings : EXIT.ok;
  },

  async recover(sdk, _actor, { values, io }) {
    if (!values.json) io.stderr('recovering interrupted tasks...\n');
    const report = await sdk.recover();
    if (values.json) io.stdout(json(report));
    else
      io.stdout(
        `interrupted tasks: ${report.interruptedTasks.length}\nfailed images: ${report.failedImages.length}\n` +
          `removed files: ${report.removedFiles.length}\nhypervisor actions: ${report.hypervisorActions.length}\n`,
      );
    return EXIT.ok;
  },

  async usage(sdk, actor, { values, io }) {
    const format = values.json ? 'json' : (values.format ?? 'table');
    if (format !== 'table' && format !== 'csv' && format !== 'json') throw new UsageError('--format must be table, csv or json');
    const report = await sdk.settings.usageReport(actor, {
      from: date(values.from, 'from'),
      to: date(values.to, 'to'),
      ...(values.account ? { accountId: values.account } : {}),
    });
    type Line = (typeof report.images.lines)[number];
    const columns: Column<Line>[] = [
      { header: 'ACCOUNT', value: (l) => l.accountId },
      { header: 'IMAGE', value: (l) => l.imageId },
      { header: 'NAME', value: (l) => l.imageName },
      { header: 'SIZE GB', value: (l) => l.sizeGb },
      { header: 'RATE', value: (l) => l.rate },
      { header: 'HOURS', value: (l) => l.billedHours },
      { header: `AMOUNT ${report.currency}`, value: (l) => l.amount },
    ];
    if (format === 'json') io.stdout(json(report));
    else if (format === 'csv') io.stdout(csv(report.images.lines, columns));
    else io.stdout(`${table(report.images.lines, columns)}TOTAL ${report.currency} ${report.images.total}\n`);
    return EXIT.ok;
  },

  async tasks(sdk, actor, { values, io }) {
    const limit = positiveInt(values.limit, 'limit');
    const page = await sdk.images.listTasks(actor, {
      ...(limit ? { limit } : {}),
      // Unchecked here: the service validates them (VALIDATION_FAILED naming the field).
      ...(values.status ? { status: values.status as ListTasksQuery['status'] } : {}),
      ...(values.type ? { type: values.type as ListTasksQuery['type'] } : {}),
      ...(values.account ? { accountId: values.account } : {}),
    });
    if (values.json) io.stdout(json(page));
    else
      io.stdout(
        table(page.items, [
          { header: 'ID', value: (t) => t.id },
          { header: 'TYPE', value: (t) => t.type },
          { header: 'STATUS', value: (t) => t.status },
          { header: 'PERCENT', value: (t) => t.progress.percent },
          { header: 'ACCOUNT', value: (t) => t.accountId },
          { header: 'ERROR', value: (t) => t.errorCode },
          { header: 'CREATED', value: (t) => t.createdAt.toISOString() },
        ]),
      );
    return EXIT.ok;
  },
};

/**
 * Runs the CLI with `argv` (without the node and script paths). Never throws: errors are written
 * to stderr and turned into exit codes.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    io.stderr(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return EXIT.usage;
  }
  const [name, ...positionals] = parsed.positionals;
  if (parsed.values.help || name === undefined || name === 'help') {
    (name === undefined && !parsed.values.help ? io.stderr : io.stdout)(USAGE);
    return name === undefined && !parsed.values.help ? EXIT.usage : EXIT.ok;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    io.stderr(`Unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
    return EXIT.usage;
  }
  let sdk: InstanceImages | null = null;
  try {
    const path = configPath(parsed.values, io.cwd);
    sdk = await (io.load ?? importSdk)(path);
    const actor: Actor = { kind: 'admin', userId: `cli:${safeUser()}` };
    return await command(sdk, actor, { positionals, values: parsed.values, io });
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`${error.message}\n`);
      return EXIT.usage;
    }
    if (isInstanceImagesError(error)) io.stderr(`${error.code}: ${error.message}\n`);
    else io.stderr(`unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.failed;
  } finally {
    await sdk?.close().catch(() => undefined);
  }
}

function safeUser(): string {
  try {
    return (
      userInfo()
        .username.replace(/[^\x21-\x7e]/g, '?')
        .slice(0, 64) || 'unknown'
    );
  } catch {
    return 'unknown';
  }
}
