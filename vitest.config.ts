import { defineConfig } from 'vitest/config';

// Two projects: unit tests (in-memory, parallel) and integration suites against real
// services (libvirt/QEMU, sshd, Ceph radosgw, PostgreSQL), which run one file at a time.
export default defineConfig({
  test: {
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
