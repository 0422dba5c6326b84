/**
 * The SDK's health report (`InstanceImages.health`, the HTTP health endpoint): the repositories
 * answer within a timeout, and the queue runs.
 * @module
 */
import { isInstanceImagesError } from './errors';
import type { Repositories } from './ports/repositories';

/** One check of {@link InstanceImages.health}. */
export interface HealthCheck {
  ok: boolean;
  /** What failed, in words (no secrets); `ok` when fine. */
  message: string;
}

/** What {@link InstanceImages.health} reports: `ok` when every check is. */
export interface HealthReport {
  ok: boolean;
  checks: { repositories: HealthCheck; queue: HealthCheck };
}

/** Reads from the repositories within `timeoutMs`. */
async function checkRepositories(repositories: Repositories, timeoutMs: number): Promise<HealthCheck> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<HealthCheck>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, message: `the repositories did not answer within ${timeoutMs} ms` }), timeoutMs);
  });
  const probe = repositories.tasks.get('00000000-0000-4000-8000-000000000000').then(
    (): HealthCheck => ({ ok: true, message: 'ok' }),
    (error: unknown): HealthCheck => ({
      ok: false,
      message: `the repositories failed: ${isInstanceImagesError(error) ? error.code : 'unexpected error'}`,
    }),
  );
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The report: the repositories read within `timeoutMs`; the queue runs unless the SDK was closed. */
export async function healthReport(repositories: Repositories, closed: boolean, timeoutMs: number): Promise<HealthReport> {
  const repositoriesCheck = await checkRepositories(repositories, timeoutMs);
  const queueCheck: HealthCheck = closed ? { ok: false, message: 'the SDK was closed' } : { ok: true, message: 'ok' };
  return { ok: repositoriesCheck.ok && queueCheck.ok, checks: { repositories: repositoriesCheck, queue: queueCheck } };
}
