/**
 * Skipped integration tests never go unnoticed: outside CI a line before vitest's summary counts
 * them and names the command that runs them; in CI they fail the run. Proven by running vitest with
 * the project's own vitest.config.ts on a fixture root (test/fixtures/skipped-suite) whose one
 * integration file has a skipped suite.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const fixture = `${root}test/fixtures/skipped-suite`;

/** Runs vitest on the fixture with the given extra environment; CI unset unless given. */
function runFixture(env: Record<string, string>) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => name !== 'CI' && name !== 'INSTANCE_IMAGES_SKIP_SERVICES' && !name.startsWith('VITEST')),
  );
  const result = spawnSync(
    process.execPath,
    [`${root}node_modules/vitest/vitest.mjs`, 'run', '--config', `${root}vitest.config.ts`, '--root', fixture],
    {
      cwd: fixture,
      encoding: 'utf8',
      env: { ...clean, NO_COLOR: '1', ...env },
    },
  );
  const lines = result.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  return { status: result.status, stdout: result.stdout, lines };
}

describe('skipped integration tests', () => {
  it('outside CI: counted, with the command that runs them, just before vitest summary, which stays last', () => {
    const run = runFixture({});
    expect(run.status, run.stdout).toBe(0);
    const note = run.lines.findIndex((line) =>
      line.startsWith('2 integration tests in 1 file skipped (a service they need is missing). To run them: npm test'),
    );
    expect(note, run.stdout).toBeGreaterThan(-1);
    expect(run.lines.slice(note + 1).map((line) => line.split(/\s+/)[0])).toEqual(['Test', 'Tests', 'Start', 'Duration']);
  }, 60_000);

  it('says so when the person opted out of the services', () => {
    const run = runFixture({ INSTANCE_IMAGES_SKIP_SERVICES: '1' });
    expect(run.status, run.stdout).toBe(0);
    expect(run.stdout).toContain('2 integration tests in 1 file skipped (INSTANCE_IMAGES_SKIP_SERVICES=1). To run them: npm test');
  }, 60_000);

  it('in CI: fail the run', () => {
    const run = runFixture({ CI: 'true' });
    expect(run.status, run.stdout).toBe(1);
    expect(run.stdout).toContain('CI: 2 integration tests in 1 file skipped; in CI every integration suite must run');
    expect(run.lines.at(-1)).toMatch(/^Duration/);
  }, 60_000);
});
