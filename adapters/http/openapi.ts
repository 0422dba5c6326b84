/**
 * The OpenAPI 3.1 document of the images API, generated from the route table and the zod
 * schemas with zod 4's own `z.toJSONSchema()` (JSON Schema 2020-12, which OpenAPI 3.1 uses as is).
 * @module
 */
import { z } from 'zod';
import { IdSchema } from '../../src/model/common';
import { PROBLEM_CONTENT_TYPE } from './problem';
import { pathParams, type RouteDefinition } from './route-types';
import { AccountStateSchema } from '../../src/model/settings';
import { AccountClosingSchema, InstanceDeletionSchema } from './account-routes';
import { IMAGES_ROUTES } from './routes';
import { uploadPaths } from '../tus/openapi';
import { DownloadLinkSchema, OsImageImportSchema } from './routes-moving';
import * as schemas from './schemas';
import {
  CreateOsImageInputSchema,
  DeployInputSchema,
  IsoInputSchema,
  MediaGroupInputSchema,
  UpdateIsoInputSchema,
  UpdateOsImageInputSchema,
} from '../../src/services/catalog';
import { CreateImageInputSchema } from '../../src/services/images';
import { MOVE_REQUEST_COMPONENTS, MOVE_RESPONSE_COMPONENTS } from './move-routes';
import { DownloadLinkInputSchema } from '../../src/services/image-export';
import { ImportImageInputSchema, ImportOsImageInputSchema } from '../../src/services/image-import';
import { LocationSettingsInputSchema } from '../../src/services/settings';
import { CreateStorageInputSchema, ReconcileOptionsSchema, UpdateStorageInputSchema } from '../../src/services/storages';

/** A JSON Schema object (2020-12). */
export type JsonSchema = Record<string, unknown>;

/** The parts of an OpenAPI 3.1 document this module produces. */
export interface OpenApiDocument {
  /** The OpenAPI version, `3.1.0`. */
  openapi: '3.1.0';
  /** Title, version, description. */
  info: { title: string; version: string; description: string; license: { name: string; identifier: string } };
  /** Where the API is mounted. */
  servers: { url: string }[];
  /** The JSON Schema dialect of every schema. */
  jsonSchemaDialect: string;
  /** Operation tags. */
  tags: { name: string }[];
  /** Paths, by OpenAPI path template (`/images/{imageId}`). */
  paths: Record<string, Record<string, OpenApiOperation>>;
  /** Who may call: the host's own authentication (see {@link OpenApiOptions.securitySchemes}). */
  security: Record<string, string[]>[];
  /** Named schemas, shared responses and the security schemes. */
  components: { schemas: Record<string, JsonSchema>; responses: Record<string, unknown>; securitySchemes: Record<string, JsonSchema> };
}

/** One operation. */
export interface OpenApiOperation {
  /** Stable id. */
  operationId: string;
  /** Summary. */
  summary: string;
  /** Tags. */
  tags: string[];
  /** Path and query parameters. */
  parameters: { name: string; in: 'path' | 'query' | 'header'; required: boolean; schema: JsonSchema; description?: string }[];
  /** The request body. */
  requestBody?: { required: boolean; content: Record<string, { schema: JsonSchema }> };
  /** Responses by status. */
  responses: Record<string, unknown>;
  /** Security note: which actor the host must resolve. */
  'x-actor': 'customer-or-admin' | 'admin' | 'signed-link' | 'none';
  /** `[]` on the routes that need no actor; else the document's `security` applies. */
  security?: Record<string, string[]>[];
}

/** Options of {@link createOpenApiDocument}. */
export interface OpenApiOptions {
  /** `servers[0].url`: where the host mounts the API. @default '/' */
  serverUrl?: string;
  /** `info.title`. @default 'Instance Images API' */
  title?: string;
  /** `info.version`. @default '0.1.0' */
  version?: string;
  /**
   * The host's authentication, as OpenAPI security schemes (every one is required by every route
   * but `/openapi.json` and `/health`). The SDK does no authentication: the host's `resolveActor`
   * decides who calls, from its own session, API key or token.
   * @default one `hostAuth` scheme: HTTP bearer, described as the host's own
   */
  securitySchemes?: Record<string, JsonSchema>;
}

/** What each tag of operations is about (every tag a route uses needs one: the document's test checks it). */
export const TAG_DESCRIPTIONS: Readonly<Record<string, string>> = {
  images: 'My Images: capture an instance into an image, retry, cancel, list, delete',
  tasks: 'Tasks of the caller: list, one task, and its live progress as Server-Sent Events',
  deploy: 'What a new instance can be deployed from (the OS picker), and deploys',
  isos: 'ISOs a customer can see, and mounting one on an instance',
  billing: 'The usage report (its Images section)',
  'admin: storages': 'Operators: image storages, hypervisor bindings, health, the image browser and reconcile',
  'admin: catalog': 'Operators: stock OS images, media groups and ISOs',
  'admin: settings': 'Operators: per-location settings (enabled, price, default cap) and per-account caps',
  'admin: operations': 'Operators: every image and task, recovery, size refresh',
  'admin: accounts': "Operators: the host's account and instance lifecycle (suspend, unsuspend, close, instance deleted)",
  sharing: 'Images that move: shares with other accounts, ownership transfers, copies to other storages',
  uploads: 'Resumable uploads of images (the tus 1.0.0 protocol): create, resume from the offset, terminate',
  meta: 'The API itself: this document and health',
};

const DEFAULT_SECURITY_SCHEMES: Record<string, JsonSchema> = {
  hostAuth: {
    type: 'http',
    scheme: 'bearer',
    description:
      "The host panel's own authentication (a session cookie, an API key or a token): the router asks the host's `resolveActor` who the caller is. Hosts describe theirs with `createOpenApiDocument({ securitySchemes })`.",
  },
};

const DIALECT = 'https://json-schema.org/draft/2020-12/schema';
const ref = (name: string) => `#/components/schemas/${name}`;

/** The `format` values of JSON Schema 2020-12 and OpenAPI 3.1; zod's own (e.g. `starts_with`) are dropped (the `pattern` stays). */
const STANDARD_FORMATS = new Set([
  'date-time',
  'date',
  'time',
  'duration',
  'email',
  'idn-email',
  'hostname',
  'idn-hostname',
  'ipv4',
  'ipv6',
  'uri',
  'uri-reference',
  'iri',
  'iri-reference',
  'uuid',
  'uri-template',
  'json-pointer',
  'relative-json-pointer',
  'regex',
  'int32',
  'int64',
  'float',
  'double',
  'password',
]);

/** Answers JSON carry dates as ISO 8601 strings; only standard formats are kept. */
function dateAsString(ctx: { zodSchema: z.core.$ZodTypes; jsonSchema: z.core.JSONSchema.BaseSchema }): void {
  if (ctx.zodSchema._zod.def.type === 'date') {
    ctx.jsonSchema.type = 'string';
    ctx.jsonSchema.format = 'date-time';
  }
  if (typeof ctx.jsonSchema.format === 'string' && !STANDARD_FORMATS.has(ctx.jsonSchema.format)) delete ctx.jsonSchema.format;
}

/** A query parameter is text: `null` (which a zod `nullish()` allows in code) cannot be sent, so it is not documented. */
function withoutNull(schema: JsonSchema): JsonSchema {
  const anyOf = schema.anyOf as JsonSchema[] | undefined;
  if (!Array.isArray(anyOf)) return schema;
  const rest = anyOf.filter((s) => s.type !== 'null');
  if (rest.length === anyOf.length) return schema;
  const { anyOf: _dropped, ...others } = schema;
  void _dropped;
  return rest.length === 1 ? { ...others, ...rest[0] } : { ...others, anyOf: rest };
}

/** Named response schemas (answers, serialized: `io: output`). */
const RESPONSE_COMPONENTS: Record<string, z.ZodType> = {
  Image: schemas.ImageSchema,
  Task: schemas.TaskSchema,
  Iso: schemas.IsoSchema,
  MediaGroup: schemas.MediaGroupSchema,
  StorageBinding: schemas.StorageBindingSchema,
  LocationSettings: schemas.LocationSettingsSchema,
  StorageView: schemas.StorageViewSchema,
  ImageWithTask: schemas.ImageWithTaskSchema,
  ImagePage: schemas.ImagePageSchema,
  TaskPage: schemas.TaskPageSchema,
  IsoPage: schemas.IsoPageSchema,
  DeployableImages: schemas.DeployableImagesSchema,
  DeployStarted: schemas.DeployStartedSchema,
  StorageHealth: schemas.StorageHealthSchema,
  BrowsePage: schemas.BrowsePageSchema,
  ReconcileResult: schemas.ReconcileResultSchema,
  MediaGroupList: schemas.MediaGroupListSchema,
  StorageList: schemas.StorageListSchema,
  LocationSettingsList: schemas.LocationSettingsListSchema,
  AccountLimitResponse: schemas.AccountLimitResponseSchema,
  ImageResponse: schemas.ImageResponseSchema,
  RefreshSizeResponse: schemas.RefreshSizeResponseSchema,
  RecoveryReport: schemas.RecoveryReportSchema,
  UsageReport: schemas.UsageReportSchema,
  AccountState: AccountStateSchema,
  AccountClosing: AccountClosingSchema,
  InstanceDeletion: InstanceDeletionSchema,
  Problem: schemas.ProblemSchema,
  ...MOVE_RESPONSE_COMPONENTS,
  DownloadLink: DownloadLinkSchema,
  OsImageImport: OsImageImportSchema,
};

/** Named request body schemas (what a client sends: `io: input`, so defaulted fields are optional). */
const REQUEST_COMPONENTS: Record<string, z.ZodType> = {
  CreateImageInput: CreateImageInputSchema,
  ImportImageInput: ImportImageInputSchema,
  ImportOsImageInput: ImportOsImageInputSchema,
  DownloadLinkInput: DownloadLinkInputSchema,
  DeployInput: DeployInputSchema,
  MountIsoInput: schemas.MountIsoBodySchema,
  CreateStorageInput: CreateStorageInputSchema,
  UpdateStorageInput: UpdateStorageInputSchema,
  BindingInput: schemas.BindingBodySchema,
  ReconcileOptions: ReconcileOptionsSchema,
  CreateOsImageInput: CreateOsImageInputSchema,
  UpdateOsImageInput: UpdateOsImageInputSchema,
  MediaGroupInput: MediaGroupInputSchema,
  IsoInput: IsoInputSchema,
  UpdateIsoInput: UpdateIsoInputSchema,
  LocationSettingsInput: LocationSettingsInputSchema,
  AccountLimitInput: schemas.AccountLimitBodySchema,
  ...MOVE_REQUEST_COMPONENTS,
};

function nameOf(table: Record<string, z.ZodType>, schema: z.ZodType): string | null {
  for (const [name, candidate] of Object.entries(table)) if (candidate === schema) return name;
  return null;
}

function strip(schema: Record<string, unknown>): JsonSchema {
  const { $schema, $id, ...rest } = schema;
  void $schema;
  void $id;
  return rest;
}

function componentSchemas(table: Record<string, z.ZodType>, io: 'input' | 'output'): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(table)) registry.add(schema, { id });
  const converted = z.toJSONSchema(registry, { io, unrepresentable: 'any', uri: ref, override: dateAsString });
  return Object.fromEntries(Object.entries(converted.schemas).map(([name, schema]) => [name, strip(schema as Record<string, unknown>)]));
}

function inlineSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  return strip(z.toJSONSchema(schema, { io, unrepresentable: 'any', override: dateAsString }) as Record<string, unknown>);
}

const STATUS_TEXT: Record<number, string> = {
  400: 'The input is not valid (`VALIDATION_FAILED` with `fields`, e.g. an unknown query parameter or body field, ill-formed Unicode, a malformed path escape; or `MALFORMED_JSON`)',
  401: 'No actor: the caller is not signed in (`UNAUTHENTICATED`)',
  403: 'Not allowed (`FORBIDDEN`; `FEATURE_DISABLED` when the location has the image feature off; `ACCOUNT_SUSPENDED`, `ACCOUNT_CLOSED`)',
  404: "Not found, or another account's (`NOT_FOUND`)",
  409: 'Conflicts with the current state (`INVALID_STATE`, `IN_USE`, `CONFLICT`, `IMAGE_LIMIT_REACHED`, `IMAGE_PROTECTED`, `CANCELLED`; `ACCOUNT_MISMATCH` for admins)',
  413: 'The body is too large (`PAYLOAD_TOO_LARGE`)',
  415: 'Wrong content type (`UNSUPPORTED_MEDIA_TYPE`)',
  416: 'The range lies outside the file (`RANGE_NOT_SATISFIABLE`)',
  422: 'The data does not match its checksum (`CHECKSUM_MISMATCH`), an import URL leads where imports may not go (`DESTINATION_REFUSED`), the file is no image we import (`UNSUPPORTED_IMAGE`), or the image cannot boot on the plan (`IMAGE_INCOMPATIBLE`)',
  500: 'Unexpected error (`INTERNAL`; details are logged, never sent)',
  502: 'An upstream host misbehaved (`HOST_KEY_MISMATCH`, `COMMAND_FAILED`)',
  503: 'A storage or hypervisor is not reachable (`STORAGE_UNAVAILABLE`, `HYPERVISOR_UNREACHABLE`)',
  504: 'The operation timed out (`TIMEOUT`)',
  507: 'No storage for the image (`NO_IMAGE_STORAGE`, `STORAGE_FULL`)',
};

function errorStatuses(route: RouteDefinition): number[] {
  // 400 on every route: an unknown query parameter is refused everywhere (and path ids, queries
  // and bodies are validated). 502/503/504: any route may reach a repository, storage or
  // hypervisor of the host that fails upstream, is unreachable or times out.
  const statuses = new Set<number>([400, ...(route.public ? [] : [401]), 500, 502, 503, 504, ...(route.errors ?? [])]);
  if (route.admin) statuses.add(403);
  if (pathParams(route.path).length > 0) statuses.add(404);
  if (route.body) statuses.add(413).add(415);
  if (route.rawBody) statuses.add(413).add(415);
  return [...statuses].sort((a, b) => a - b);
}

function operationFor(route: RouteDefinition, idSchema: JsonSchema): OpenApiOperation {
  const parameters: OpenApiOperation['parameters'] = pathParams(route.path).map((name) => ({
    name,
    in: 'path',
    required: true,
    schema: idSchema,
  }));
  if (route.query) {
    const query = inlineSchema(route.query, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] };
    for (const [name, schema] of Object.entries(query.properties ?? {})) {
      parameters.push({ name, in: 'query', required: (query.required ?? []).includes(name), schema: withoutNull(schema) });
    }
  }
  const operation: OpenApiOperation = {
    operationId: route.operationId,
    summary: route.summary,
    tags: [route.tag],
    parameters,
    responses: {},
    'x-actor': route.public ? 'signed-link' : route.admin ? 'admin' : 'customer-or-admin',
  };
  if (route.body) {
    const name = nameOf(REQUEST_COMPONENTS, route.body);
    operation.requestBody = {
      required: true,
      content: { 'application/json': { schema: name ? { $ref: ref(name) } : inlineSchema(route.body, 'input') } },
    };
  }
  if (route.rawBody) {
    operation.requestBody = {
      required: true,
      content: Object.fromEntries(route.rawBody.contentTypes.map((type) => [type, { schema: { type: 'string', contentMediaType: type } }])),
    };
  }
  const success = route.success;
  if (success.contentType === 'application/octet-stream') {
    operation.responses[String(success.status)] = {
      description: success.description,
      headers: {
        'Repr-Digest': { description: 'sha-256 of the whole file (RFC 9530)', schema: { type: 'string' } },
        'X-Checksum-Sha256': { description: 'sha-256 of the whole file, hex', schema: { type: 'string' } },
      },
      content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
    };
    operation.responses['206'] = { description: 'One range of the file (`Range: bytes=…`)' };
  } else if (success.contentType === 'text/event-stream') {
    operation.responses[String(success.status)] = {
      description: success.description,
      content: {
        'text/event-stream': {
          schema: {
            type: 'string',
            description:
              'Events `task` (the current state), `task.progress`, `task.finished` (then the stream ends); each `data` line is a Task (components/schemas/Task) as JSON',
          },
        },
      },
    };
  } else if (success.schema) {
    const name = nameOf(RESPONSE_COMPONENTS, success.schema);
    if (!name) throw new Error(`The answer of ${route.operationId} has no component name`);
    operation.responses[String(success.status)] = {
      description: success.description,
      content: { 'application/json': { schema: { $ref: ref(name) } } },
    };
  } else {
    operation.responses[String(success.status)] = { description: success.description };
  }
  if (success.location) {
    (operation.responses[String(success.status)] as Record<string, unknown>).headers = {
      Location: { description: success.location, schema: { type: 'string', format: 'uri-reference' } },
    };
  }
  for (const status of errorStatuses(route)) operation.responses[String(status)] = { $ref: `#/components/responses/Problem${status}` };
  return operation;
}

/** The OpenAPI path template of an Express path (`/images/:imageId` → `/images/{imageId}`). */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z][A-Za-z0-9]*)/g, '{$1}');
}

/**
 * Builds the OpenAPI 3.1 document of every route of the images API (including
 * `GET /openapi.json` itself), with parameters, request bodies, answers and problem responses.
 */
export function createOpenApiDocument(options: OpenApiOptions = {}): OpenApiDocument {
  const idSchema = inlineSchema(IdSchema, 'input');
  const securitySchemes = options.securitySchemes ?? DEFAULT_SECURITY_SCHEMES;
  const paths: OpenApiDocument['paths'] = {};
  const tags = new Set<string>();
  for (const route of IMAGES_ROUTES) {
    const key = openApiPath(route.path);
    paths[key] ??= {};
    (paths[key] as Record<string, OpenApiOperation>)[route.method] = operationFor(route, idSchema);
    tags.add(route.tag);
  }
  // Resumable uploads: the tus protocol in headers (adapters/tus).
  Object.assign(paths, uploadPaths());
  tags.add('uploads');
  paths['/openapi.json'] = {
    get: {
      operationId: 'getOpenApiDocument',
      summary: 'This document',
      tags: ['meta'],
      parameters: [],
      responses: {
        '200': {
          description: 'The OpenAPI 3.1 document',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['openapi', 'info', 'paths'],
                properties: { openapi: { type: 'string', const: '3.1.0' }, info: { type: 'object' }, paths: { type: 'object' } },
              },
            },
          },
        },
        '400': { $ref: '#/components/responses/Problem400' },
      },
      'x-actor': 'none',
      security: [],
    },
  };
  const check = { type: 'object', required: ['ok', 'message'], properties: { ok: { type: 'boolean' }, message: { type: 'string' } } };
  const health = {
    type: 'object',
    required: ['ok', 'checks'],
    properties: {
      ok: { type: 'boolean' },
      checks: { type: 'object', required: ['repositories', 'queue'], properties: { repositories: check, queue: check } },
    },
  };
  paths['/health'] = {
    get: {
      operationId: 'getHealth',
      summary: 'Health for load balancers: the repositories answer and the queue runs (no actor needed)',
      tags: ['meta'],
      parameters: [],
      responses: {
        '200': { description: 'Every check passed', content: { 'application/json': { schema: health } } },
        '400': { $ref: '#/components/responses/Problem400' },
        '503': { description: 'A check failed', content: { 'application/json': { schema: health } } },
      },
      'x-actor': 'none',
      security: [],
    },
  };
  const responses: Record<string, unknown> = {};
  for (const [status, description] of Object.entries(STATUS_TEXT)) {
    responses[`Problem${status}`] = { description, content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: ref('Problem') } } } };
  }
  return {
    openapi: '3.1.0',
    info: {
      license: { name: 'MIT', identifier: 'MIT' },
      title: options.title ?? 'Instance Images API',
      version: options.version ?? '0.1.0',
      description:
        'Custom images, stock OS images, media groups, ISOs, image storages, settings and usage of the instance-images SDK. The host resolves the actor from its own session; `/admin` routes need an admin actor. Errors are application/problem+json with a stable `code`.',
    },
    servers: [{ url: options.serverUrl ?? '/' }],
    jsonSchemaDialect: DIALECT,
    tags: [...tags, 'meta'].map((name) => ({ name, description: TAG_DESCRIPTIONS[name] ?? '' })),
    paths,
    security: Object.keys(securitySchemes).map((name) => ({ [name]: [] })),
    components: {
      schemas: { ...componentSchemas(REQUEST_COMPONENTS, 'input'), ...componentSchemas(RESPONSE_COMPONENTS, 'output') },
      responses,
      securitySchemes,
    },
  };
}
