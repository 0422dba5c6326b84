/**
 * The real Ceph radosgw the S3 integration tests run against: its endpoint and keys (from the env
 * file scripts/start-services.sh writes), a fresh bucket per test file, and cleanup.
 */
import { afterAll, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import type { S3StorageOptions } from '../../../drivers/storage/s3/options';
import { S3StorageOptionsSchema } from '../../../drivers/storage/s3/options';

const execFileAsync = promisify(execFile);

/** Where scripts/start-services.sh keeps the services. */
export const SERVICES_DIR = process.env.SERVICES_DIR ?? '/var/tmp/instance-images-test/services';
const ENV_FILE = `${SERVICES_DIR}/env.sh`;

/** Endpoint and credentials of the test radosgw. */
export interface S3TestEnv {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * A fresh bucket for one test file: created before its tests with an admin client, deleted (with
 * everything in it) after them. Register it inside the `describe`; the file's own `afterAll`
 * hooks, registered later, run before the bucket is deleted.
 */
export function useTestBucket(env: S3TestEnv, label: string): { readonly bucket: string; readonly admin: S3Client } {
  const bucket = freshBucketName(label);
  let admin: S3Client | undefined;
  beforeAll(async () => {
    admin = adminClient(env);
    await createBucket(admin, bucket);
  });
  afterAll(async () => {
    if (admin === undefined) return;
    await deleteBucket(admin, bucket);
    admin.destroy();
  });
  return {
    bucket,
    get admin(): S3Client {
      if (admin === undefined) throw new Error('the test bucket is not ready yet (use it inside a test or hook)');
      return admin;
    },
  };
}

/** Reads `export NAME=value` lines of the services env file. */
function readEnvFile(): Record<string, string> {
  const values: Record<string, string> = {};
  let text: string;
  try {
    text = readFileSync(ENV_FILE, 'utf8');
  } catch {
    return values;
  }
  for (const line of text.split('\n')) {
    const match = /^export\s+(.*)$/.exec(line.trim());
    if (!match?.[1]) continue;
    for (const pair of match[1].split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq > 0) values[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return values;
}

/** True when something answers HTTP on the endpoint. */
export async function s3Reachable(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(endpoint, { signal: AbortSignal.timeout(3000) });
    await response.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

/**
 * The test S3 service, or a reason why it is missing. With CI set a missing service throws, so the
 * suite fails instead of being skipped.
 */
export async function loadS3TestEnv(): Promise<{ env: S3TestEnv; missing: null } | { env: null; missing: string }> {
  const file = readEnvFile();
  const endpoint = process.env.AWS_ENDPOINT_URL ?? file.AWS_ENDPOINT_URL;
  const accessKeyId = process.env.AWS_ACCESS_KEY_ID ?? file.AWS_ACCESS_KEY_ID;
  const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY ?? file.AWS_SECRET_ACCESS_KEY;
  const region = process.env.AWS_REGION ?? file.AWS_REGION ?? 'us-east-1';
  let missing: string | null = null;
  if (!endpoint || !accessKeyId || !secretAccessKey)
    missing = `no S3 endpoint/keys in the environment or ${ENV_FILE}; run scripts/start-services.sh`;
  else if (!(await s3Reachable(endpoint))) missing = `radosgw at ${endpoint} is not reachable; run scripts/start-services.sh`;
  if (missing !== null || !endpoint || !accessKeyId || !secretAccessKey) {
    const reason = missing ?? 'S3 test environment incomplete';
    if (process.env.CI) throw new Error(`S3 integration tests need the real radosgw: ${reason}`);
    return { env: null, missing: reason };
  }
  return { env: { endpoint, region, accessKeyId, secretAccessKey }, missing: null };
}

/** A raw SDK client for the test's own setup and checks (not the driver under test). */
export function adminClient(env: S3TestEnv): S3Client {
  return new S3Client({
    endpoint: env.endpoint,
    region: env.region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** A unique bucket name for one test file. */
export function freshBucketName(label: string): string {
  return `ii-${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** Driver options for the test radosgw. */
export function driverOptions(env: S3TestEnv, bucket: string, extra: Partial<S3StorageOptions> = {}): S3StorageOptions {
  return S3StorageOptionsSchema.parse({
    endpoint: env.endpoint,
    region: env.region,
    bucket,
    accessKeyId: env.accessKeyId,
    secretAccessKey: env.secretAccessKey,
    forcePathStyle: true,
    ...extra,
  });
}

/** Creates a bucket. */
export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
}

/** Multipart uploads still open in the bucket (any prefix). */
export async function openMultipartUploads(client: S3Client, bucket: string): Promise<{ key: string; id: string }[]> {
  const result: { key: string; id: string }[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await client.send(
      new ListMultipartUploadsCommand({ Bucket: bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
    );
    for (const upload of page.Uploads ?? []) if (upload.Key && upload.UploadId) result.push({ key: upload.Key, id: upload.UploadId });
    if (!page.IsTruncated) return result;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}

/** Every object key in the bucket. */
export async function allObjectKeys(client: S3Client, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Empties (objects and open multipart uploads) and deletes a bucket. */
export async function deleteBucket(client: S3Client, bucket: string): Promise<void> {
  for (const upload of await openMultipartUploads(client, bucket)) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.key, UploadId: upload.id }));
  }
  for (const key of await allObjectKeys(client, bucket)) {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

/** The pid file of the test radosgw. */
export const RADOSGW_PID_FILE = `${SERVICES_DIR}/ceph/run/client.rgw.a.pid`;

/** The pid of the running radosgw. */
export function radosgwPid(): number {
  const pid = Number(readFileSync(RADOSGW_PID_FILE, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no radosgw pid in ${RADOSGW_PID_FILE}`);
  return pid;
}

function processAlive(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return !/^State:\s*Z/m.test(status);
  } catch {
    return false;
  }
}

/** Kills radosgw with SIGKILL (a crash, not a clean stop) and waits until it is gone. */
export async function killRadosgw(): Promise<number> {
  const pid = radosgwPid();
  process.kill(pid, 'SIGKILL');
  for (let attempt = 0; attempt < 100 && processAlive(pid); attempt += 1) await new Promise((resolve) => setTimeout(resolve, 100));
  if (processAlive(pid)) throw new Error(`radosgw ${pid} did not die`);
  return pid;
}

/**
 * Starts only radosgw again (`scripts/start-services.sh rgw`: the cluster behind it keeps running)
 * and waits until it answers; falls back to {@link ensureRadosgwUp} when that is not enough.
 */
export async function restartRadosgw(endpoint: string): Promise<void> {
  const script = fileURLToPath(new URL('../../../scripts/start-services.sh', import.meta.url));
  await execFileAsync('bash', [script, 'rgw'], { timeout: 120_000 }).catch(() => undefined);
  await ensureRadosgwUp(endpoint);
}

/** Starts the services again when radosgw does not answer (scripts/start-services.sh is idempotent). */
export async function ensureRadosgwUp(endpoint: string): Promise<void> {
  if (await s3Reachable(endpoint)) return;
  const script = fileURLToPath(new URL('../../../scripts/start-services.sh', import.meta.url));
  await execFileAsync('bash', [script], { timeout: 180_000 });
  if (!(await s3Reachable(endpoint))) throw new Error(`radosgw at ${endpoint} did not come back after scripts/start-services.sh`);
}

/** The one-letter state of a process (`R`, `S`, `T` for stopped, `Z`), or `null` when it is gone. */
export function processState(pid: number): string | null {
  try {
    return /^State:\s*(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/**
 * Freezes radosgw with SIGSTOP: its socket still accepts connections (the kernel completes them)
 * and takes bytes until the buffers fill, but nothing answers — as a hung radosgw, or one whose
 * full Ceph cluster blocks writes. Returns a function that lets it run again (SIGCONT; idempotent,
 * and safe if the process is gone). Other test files use the same radosgw: call it in a `finally`.
 */
export function freezeRadosgw(): () => void {
  const pid = radosgwPid();
  process.kill(pid, 'SIGSTOP');
  let frozen = true;
  return () => {
    if (!frozen) return;
    frozen = false;
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone: ensureRadosgwUp starts a new one
    }
  };
}

/** Waits until radosgw answers again (after a SIGCONT it works through what queued up meanwhile). */
export async function waitForRadosgw(endpoint: string): Promise<void> {
  for (let attempt = 0; attempt < 30; attempt += 1) {
    if (await s3Reachable(endpoint)) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await ensureRadosgwUp(endpoint);
}
