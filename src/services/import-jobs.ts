/**
 * The import job as data: where its bytes come from (a URL or a staged upload) and the fields its
 * task does not hold, as the queue carries them.
 * @module
 */
import { z } from 'zod';
import { UPLOAD_ID_PATTERN } from '../import/staging';
import { DescriptionSchema, IdSchema, NameSchema, Sha256Schema } from '../model/common';
import { OsTypeSchema } from '../model/image';
import type { TaskJobParams } from '../ports/task-queue';

/**
 * Where an import's bytes come from: a URL (downloaded when the task runs) or a complete upload
 * staged on the panel (`uploads.directory`, read when the task runs, removed when it ends).
 * @internal
 */
export type ImportBytesSource =
  { kind: 'url'; url: string; sha256: string | null } | { kind: 'upload'; uploadId: string; lengthBytes: number; sha256: string | null };

/** The fields of an import job besides its source. */
const ImportJobFields = {
  viaHypervisorId: IdSchema.nullable(),
  stock: IdSchema.nullable(),
  name: NameSchema.optional(),
  description: DescriptionSchema.nullable().optional(),
  osType: OsTypeSchema.optional(),
  cloudInit: z.boolean().optional(),
  mediaGroupId: IdSchema.nullable().optional(),
};

/**
 * The inputs of an import job its task does not hold: the source (`source: 'url'` with the URL,
 * the default of jobs written before uploads; `source: 'upload'` with the staged upload's id and
 * length), the checksum, the hypervisor that writes, and `stock`: the template storage of a stock
 * import (null for a custom one, whose image record holds its storage), with the stock image's
 * details.
 */
export const ImportJobParamsSchema = z.union([
  z.object({
    source: z.literal('upload'),
    uploadId: z.string().regex(UPLOAD_ID_PATTERN),
    lengthBytes: z.number().int().min(0),
    sha256: Sha256Schema.nullable(),
    ...ImportJobFields,
  }),
  z.object({ source: z.literal('url').default('url'), url: z.string(), sha256: Sha256Schema.nullable(), ...ImportJobFields }),
]);
export type ImportJobParams = z.output<typeof ImportJobParamsSchema>;

/** The job params of a source (JSON scalars). */
export function sourceParams(source: ImportBytesSource): TaskJobParams {
  if (source.kind === 'url') return { source: 'url', url: source.url, sha256: source.sha256 };
  return { source: 'upload', uploadId: source.uploadId, lengthBytes: source.lengthBytes, sha256: source.sha256 };
}
