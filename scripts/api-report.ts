/**
 * The public API report: one API Extractor report per package entry point (`api/<entry>.api.md`),
 * generated from the built declaration files (`npm run build` first).
 *
 * - `npm run api` checks: it fails, printing the changed report's path, when the public surface
 *   differs from the committed report (CI runs this). A change to the public surface is therefore
 *   always a reviewed diff of `api/*.api.md`.
 * - `npm run api -- --update` rewrites the reports after an intended change; commit them.
 *
 * The entry points are tsup's (`tsup.config.ts`), so a new subpath gets a report without editing
 * this file.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Extractor, ExtractorConfig, ExtractorLogLevel } from '@microsoft/api-extractor';
import { entries } from '../tsup.config';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const update = process.argv.includes('--update');
const reportFolder = join(root, 'api');
const tempFolder = join(root, '.tmp', 'api');
mkdirSync(reportFolder, { recursive: true });
mkdirSync(tempFolder, { recursive: true });

/**
 * The declaration emitter prints the members of a `z.ZodEnum<{ ... }>` in the order TypeScript
 * created their literal types, which differs between builds of the same source; the report sorts
 * them so that only real changes show.
 */
function canonical(report: string): string {
  // API Extractor writes CRLF line ends; they are kept.
  const crlf = report.includes('\r\n');
  const sorted = report
    .replace(/\r\n/g, '\n')
    .replace(/(ZodEnum<\{\n)((?:[ \t]+[^\n]*;\n)+)(\s*\}>)/g, (_all, open: string, members: string, close: string) => {
      const lines = members.split('\n').filter((line) => line !== '');
      return `${open}${lines.sort((a, b) => (a.trim() < b.trim() ? -1 : a.trim() > b.trim() ? 1 : 0)).join('\n')}\n${close}`;
    });
  return crlf ? sorted.replace(/\n/g, '\r\n') : sorted;
}

/** `drivers/local/index` → `drivers-local`; `index` → `index`. */
const reportName = (entry: string): string => entry.replace(/\/index$/, '').replace(/\//g, '-') || 'index';

let changed = 0;
for (const entry of Object.keys(entries)) {
  const name = reportName(entry);
  const config = ExtractorConfig.prepare({
    configObject: {
      projectFolder: root,
      mainEntryPointFilePath: join(root, 'dist', `${entry}.d.ts`),
      compiler: {
        overrideTsconfig: {
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            skipLibCheck: true,
            types: ['node'],
          },
          include: [join(root, 'dist', `${entry}.d.ts`)],
        },
      },
      apiReport: { enabled: true, reportFileName: `${name}.api.md`, reportFolder, reportTempFolder: tempFolder },
      docModel: { enabled: false },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      messages: {
        // Release tags (@public/@beta) are not used by this package: everything exported is public.
        extractorMessageReporting: {
          default: { logLevel: ExtractorLogLevel.Warning },
          'ae-missing-release-tag': { logLevel: ExtractorLogLevel.None },
          'ae-forgotten-export': { logLevel: ExtractorLogLevel.None, addToApiReportFile: true },
          'ae-internal-missing-underscore': { logLevel: ExtractorLogLevel.None },
          // TSDoc completeness is typedoc's job (npm run docs, warnings are errors there).
          'ae-undocumented': { logLevel: ExtractorLogLevel.None },
          'ae-unresolved-link': { logLevel: ExtractorLogLevel.None },
        },
        tsdocMessageReporting: { default: { logLevel: ExtractorLogLevel.None } },
        compilerMessageReporting: { default: { logLevel: ExtractorLogLevel.Warning } },
      },
    },
    configObjectFullPath: join(root, 'api-extractor.json'),
    packageJsonFullPath: join(root, 'package.json'),
  });
  const result = Extractor.invoke(config, {
    localBuild: update,
    showVerboseMessages: false,
    messageCallback: (m) => {
      // Keep the output to the verdict: API Extractor's own lines about the report are replaced by ours.
      // (all of them: in a check, the changed report's is a warning naming files this script handles)
      if (m.messageId.startsWith('console-api-report')) m.handled = true;
      if (
        m.messageId === 'console-preamble' ||
        m.messageId === 'console-compiler-version-notice' ||
        m.messageId === 'console-api-report-created'
      )
        m.handled = true;
    },
  });
  // Compared after canonical ordering of zod enum members (see `canonical`), not by API Extractor.
  const fresh = canonical(readFileSync(join(tempFolder, `${name}.api.md`), 'utf8'));
  const committedPath = join(reportFolder, `${name}.api.md`);
  const committed = existsSync(committedPath) ? canonical(readFileSync(committedPath, 'utf8')) : null;
  if (update) writeFileSync(committedPath, fresh);
  if (fresh !== committed) {
    changed++;
    console.log(`${update ? 'updated' : 'CHANGED'}: api/${name}.api.md`);
  }
  if (!result.succeeded && !result.apiReportChanged) {
    console.error(`API Extractor failed on ${entry} (${result.errorCount} errors, ${result.warningCount} warnings)`);
    process.exitCode = 1;
  }
}

if (changed > 0 && !update) {
  console.error(
    `\nThe public API differs from the committed report in ${changed} file(s). If the change is intended, run` +
      ` \`npm run build && npm run api -- --update\` and commit api/*.api.md; the new report is in .tmp/api/.`,
  );
  process.exitCode = 1;
} else {
  console.log(update ? `api reports written (${changed} changed)` : 'api reports match the public surface');
}
