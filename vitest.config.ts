import { defineConfig } from 'vitest/config';
import type { Reporter, TestModule } from 'vitest/node';

/**
 * Speaks up when integration tests were skipped (a suite skips only when a service it needs is
 * missing). Outside CI it says how many, and the one command that runs them; in CI (CI set) a
 * skipped integration test fails the run, whatever the suite itself did. Listed before the default
 * reporter, so its line comes right before vitest's summary, which stays the last thing printed.
 * Proven by test/unit/house/skipped-suites.test.ts.
 */
class SkippedIntegrationReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let tests = 0;
    let files = 0;
    for (const module of testModules) {
      if (module.project.name !== 'integration') continue;
      const skipped = [...module.children.allTests('skipped')].length;
      tests += skipped;
      if (skipped > 0) files += 1;
    }
    if (tests === 0) return;
    const what = `${tests} integration test${tests === 1 ? '' : 's'} in ${files} file${files === 1 ? '' : 's'} skipped`;
    if (process.env.CI) {
      process.exitCode = 1;
      process.stdout.write(`\n CI: ${what}; in CI every integration suite must run (npm test installs and starts the services).\n`);
      return;
    }
    const why = process.env.INSTANCE_IMAGES_SKIP_SERVICES === '1' ? 'INSTANCE_IMAGES_SKIP_SERVICES=1' : 'a service they need is missing';
    process.stdout.write(`\n ${what} (${why}). To run them: npm test   (as root; it installs and starts what is missing)\n`);
  }
}

// Two projects: unit tests (in-memory, parallel) and integration suites against real services
// (libvirt/QEMU, sshd, Ceph radosgw, PostgreSQL, Chromium), which run one file at a time.
// `npm test` (scripts/test.sh) runs both, and makes sure the services are there first.
export default defineConfig({
  test: {
    reporters: [new SkippedIntegrationReporter(), 'default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          fileParallelism: false,
          maxWorkers: 1,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
