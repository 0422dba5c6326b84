/**
 * The S3 storage driver on @aws-sdk/client-s3. The SDK is imported lazily on the first operation,
 * so importing this module (or the options) does not load it.
 *
 * A put runs the driver's own multipart loop ({@link putInParts}) with a fixed pool of reusable
 * part buffers (parts growing when the size is not known), and sends its parts as plain keep-alive requests signed by the
 * client's signer ({@link createS3PartUploader}: the SDK's per-request machinery, kept alive for
 * every part in flight, was promoted to the old generation and made peak RSS grow with the object
 * size); whole small objects read into a buffer ({@link getS3Bytes}, the chunks of a chunked image)
 * are plain signed GETs on the same connections; everything else goes through the SDK client.
 *
 * Works with AWS S3 and with S3-compatible services that lack newer features (Ceph radosgw,
 * MinIO): request checksums are only sent when an operation requires them, path-style
 * addressing is available, and nothing depends on the ETag CompleteMultipartUpload returns
 * (radosgw returns an empty one).
 *
 * The operations live in their own modules: {@link createS3Session} (settings, the lazily loaded
 * SDK and error mapping shared by every operation), `put.ts` ({@link putS3Object}), `objects.ts`
 * (reads, deletes, health) and `incomplete-uploads.ts`.
 * @module
 */
import type { StorageDriver } from '../../../src/ports/storage-driver';
import { getS3Bytes } from './plain-requests';
import { abortS3IncompleteUpload, listS3IncompleteUploads } from './incomplete-uploads';
import { checkS3Bucket, deleteS3Object, getS3Object, listS3Objects, statS3Object } from './objects';
import type { S3StorageOptions } from './options';
import { presignS3Get } from './presign';
import { putS3Bytes, putS3Object } from './put';
import { createS3Session } from './session';

export type { S3PutOptions } from './put';

/** Creates an S3 driver instance from validated options. The SDK loads on the first call. */
export function createS3StorageDriver(options: S3StorageOptions): StorageDriver {
  const session = createS3Session(options);
  return {
    name: 's3',
    capabilities: { shared: true, pathAccess: false, verifiesSha256: true },
    put: (key, body, putOptions) => putS3Object(session, key, body, putOptions),
    putBytes: (key, bytes, putOptions) => putS3Bytes(session, key, bytes, putOptions),
    get: (key, getOptions) => getS3Object(session, key, getOptions),
    getBytes: (key, into, getOptions) => getS3Bytes(session, key, into, getOptions),
    stat: (key) => statS3Object(session, key),
    list: (listOptions) => listS3Objects(session, listOptions),
    delete: (key) => deleteS3Object(session, key),
    freeSpace: async () => null,
    health: () => checkS3Bucket(session),
    listIncomplete: (incompleteOptions) => listS3IncompleteUploads(session, incompleteOptions),
    abortIncomplete: (upload) => abortS3IncompleteUpload(session, upload),
    presignGet: (key, presignOptions) => presignS3Get(session, options, key, presignOptions),
    close: () => session.close(),
  };
}
