/**
 * The upload routes in the OpenAPI document: the tus 1.0.0 requests, their headers and answers.
 * The protocol lives in headers; the document names them so that generated clients and readers
 * see the whole exchange (tus clients such as tus-js-client or Uppy speak it as is).
 * @module
 */
import { TUS_CHECKSUM_ALGORITHMS, TUS_EXTENSIONS, TUS_VERSION, UPLOAD_METADATA_KEYS } from './handler';

type Json = Record<string, unknown>;

const problem = (status: number): Json => ({ $ref: `#/components/responses/Problem${status}` });
const header = (description: string, schema: Json = { type: 'string' }, required = false): Json => ({ description, required, schema });
const integer = { type: 'integer', minimum: 0 };
const tusResumable = { name: 'Tus-Resumable', in: 'header', required: true, schema: { type: 'string', const: TUS_VERSION } };
const uploadId = { name: 'uploadId', in: 'path', required: true, schema: { type: 'string', pattern: '^upl_[A-Za-z0-9_-]{22}$' } };
const stateHeaders: Json = {
  'Tus-Resumable': header('The protocol version', { type: 'string', const: TUS_VERSION }, true),
  'Upload-Offset': header('Bytes stored so far', integer, true),
  'Upload-Length': header('The whole size (absent while deferred)', integer),
  'Upload-Defer-Length': header('`1` while the length is not known yet', { type: 'string', const: '1' }),
  'Upload-Expires': header('When an idle upload is removed (RFC 9110 date)'),
  'Upload-Image-Id': header('Once complete: the image being imported'),
  'Upload-Task-Id': header('Once complete: its `import` task'),
};
const customer = { 'x-actor': 'customer-or-admin', tags: ['uploads'] };

/** The upload info answered by `GET /uploads/{uploadId}`. */
const UploadInfoSchema: Json = {
  type: 'object',
  required: ['id', 'lengthBytes', 'offsetBytes', 'metadata', 'expiresAt', 'imageId', 'taskId'],
  properties: {
    id: { type: 'string' },
    lengthBytes: { type: ['integer', 'null'], minimum: 0 },
    offsetBytes: { type: 'integer', minimum: 0 },
    metadata: { type: 'object', additionalProperties: { type: 'string' } },
    expiresAt: { type: 'string', format: 'date-time' },
    imageId: { type: ['string', 'null'] },
    taskId: { type: ['string', 'null'] },
  },
};

/** The OpenAPI path items of the upload routes (`/uploads`, `/uploads/{uploadId}`). */
export function uploadPaths(): Record<string, Record<string, Json>> {
  return {
    '/uploads': {
      options: {
        operationId: 'getUploadCapabilities',
        summary: 'tus: the protocol versions, extensions, largest size and checksum algorithms (no actor needed)',
        tags: ['uploads'],
        parameters: [],
        responses: {
          '204': {
            description: 'The capabilities',
            headers: {
              'Tus-Version': header('Versions served', { type: 'string', const: TUS_VERSION }, true),
              'Tus-Extension': header(`Extensions: ${TUS_EXTENSIONS.join(', ')}`, { type: 'string' }, true),
              'Tus-Max-Size': header('The largest upload in bytes (`uploads.maxUploadBytes`)', integer, true),
              'Tus-Checksum-Algorithm': header(`Piece checksums: ${TUS_CHECKSUM_ALGORITHMS.join(', ')}`, { type: 'string' }, true),
            },
          },
          '404': problem(404),
        },
        'x-actor': 'none',
        security: [],
      },
      post: {
        ...customer,
        operationId: 'createUpload',
        summary:
          'tus creation: start a resumable upload of an image (customers where the location allows imports; operators also for OS images)',
        description: `\`Upload-Metadata\` (comma-separated \`key base64(value)\` pairs) says what the upload becomes: keys ${UPLOAD_METADATA_KEYS.map((k) => `\`${k}\``).join(', ')}. \`kind\` is \`image\` (default: a custom image, with \`name\`, \`locationId\`, optional \`description\`, \`sha256\`, and \`accountId\` for operators) or \`os-image\` (operators: \`name\`, \`osType\`, \`storageId\`, optional \`hypervisorId\`, \`mediaGroupId\`, \`cloudInit\` = \`true\`/\`false\`, \`description\`, \`sha256\`). \`filename\` (used as the name when \`name\` is absent), \`filetype\`, \`type\` and \`relativePath\` are accepted as tus clients send them. The account's image cap is checked now and again when the upload completes.`,
        parameters: [
          tusResumable,
          {
            name: 'Upload-Length',
            in: 'header',
            required: false,
            schema: integer,
            description: 'The whole size; or send `Upload-Defer-Length: 1`',
          },
          { name: 'Upload-Defer-Length', in: 'header', required: false, schema: { type: 'string', const: '1' } },
          { name: 'Upload-Metadata', in: 'header', required: true, schema: { type: 'string' } },
        ],
        responses: {
          '201': {
            description: 'Created; continue with PATCH at `Location`',
            headers: { ...stateHeaders, Location: header('The upload URL', { type: 'string', format: 'uri-reference' }, true) },
          },
          '400': problem(400),
          '401': problem(401),
          '403': problem(403),
          '404': problem(404),
          '409': problem(409),
          '412': { description: 'Another protocol version (`Tus-Version` names ours)' },
          '413': problem(413),
          '500': problem(500),
          '507': problem(507),
        },
      },
    },
    '/uploads/{uploadId}': {
      get: {
        ...customer,
        operationId: 'getUpload',
        summary: 'The upload as JSON; `HEAD` answers the same as tus headers (`Upload-Offset` to resume from)',
        parameters: [uploadId],
        responses: {
          '200': { description: 'The upload', headers: stateHeaders, content: { 'application/json': { schema: UploadInfoSchema } } },
          '401': problem(401),
          '404': problem(404),
          '500': problem(500),
        },
      },
      patch: {
        ...customer,
        operationId: 'writeUpload',
        summary: 'tus: append a piece at `Upload-Offset`; the piece that completes the upload starts its import',
        parameters: [
          tusResumable,
          uploadId,
          { name: 'Upload-Offset', in: 'header', required: true, schema: integer },
          { name: 'Upload-Length', in: 'header', required: false, schema: integer, description: 'Sets a deferred length' },
          {
            name: 'Upload-Checksum',
            in: 'header',
            required: false,
            schema: { type: 'string' },
            description: `\`<${TUS_CHECKSUM_ALGORITHMS.join('|')}> <base64 digest>\` of this piece`,
          },
        ],
        requestBody: {
          required: true,
          content: { 'application/offset+octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
        },
        responses: {
          '204': { description: 'Stored; `Upload-Offset` is the new offset', headers: stateHeaders },
          '400': problem(400),
          '401': problem(401),
          '404': problem(404),
          '409': problem(409),
          '412': { description: 'Another protocol version' },
          '413': problem(413),
          '415': problem(415),
          '460': { description: 'The piece does not match `Upload-Checksum` (`CHECKSUM_MISMATCH`); nothing of it was kept' },
          '500': problem(500),
          '507': problem(507),
        },
      },
      delete: {
        ...customer,
        operationId: 'terminateUpload',
        summary: 'tus termination: remove the upload and its staged bytes (a complete upload’s import goes on)',
        parameters: [tusResumable, uploadId],
        responses: {
          '204': { description: 'Removed', headers: { 'Tus-Resumable': stateHeaders['Tus-Resumable'] } },
          '401': problem(401),
          '404': problem(404),
        },
      },
    },
  };
}
