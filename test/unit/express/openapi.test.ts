/**
 * The OpenAPI 3.1 document: every route Express registered appears with its method; parameters,
 * bodies and answers are JSON Schema objects; every `$ref` resolves; problem responses are there.
 * Plus the problem mapping table.
 */
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, InstanceImagesError } from '../../../src';
import {
  createOpenApiDocument,
  HttpProblem,
  IMAGES_ROUTES,
  openApiPath,
  PROBLEM_STATUS,
  problemFromError,
  type OpenApiOperation,
} from '../../../adapters/express';
import { liveRoutes, startExpressHarness } from '../../support/express-harness';

const SCHEMA_KEYWORDS = ['type', '$ref', 'anyOf', 'oneOf', 'allOf', 'enum', 'const'];

function isJsonSchema(value: unknown): boolean {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 0 || SCHEMA_KEYWORDS.some((k) => keys.includes(k));
}

function collectRefs(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const item of value) collectRefs(item, out);
  else if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      if (key === '$ref' && typeof inner === 'string') out.push(inner);
      else collectRefs(inner, out);
    }
  }
  return out;
}

function resolve(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  return ref
    .slice(2)
    .split('/')
    .reduce<unknown>((node, part) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined), doc);
}

describe('OpenAPI 3.1 document', () => {
  it('lists every route the router registered, with parameters matching the path', async () => {
    const h = await startExpressHarness();
    const routes = liveRoutes(h.ii);
    await h.close();
    const doc = createOpenApiDocument({ serverUrl: '/api/images' });
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.servers).toEqual([{ url: '/api/images' }]);
    expect(doc.jsonSchemaDialect).toBe('https://json-schema.org/draft/2020-12/schema');
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    const registered = routes.map((route) => {
      const [method, path] = route.split(' ');
      return `${method} ${openApiPath(path as string)}`;
    });
    expect(documented.sort()).toEqual(registered.sort());
    const ids = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops) as [string, OpenApiOperation][]) {
        expect(ids.has(op.operationId), `duplicate operationId ${op.operationId}`).toBe(false);
        ids.add(op.operationId);
        const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        expect(
          op.parameters.filter((p) => p.in === 'path').map((p) => p.name),
          `${method} ${path}`,
        ).toEqual(templated);
        for (const p of op.parameters) expect(isJsonSchema(p.schema), `${method} ${path} ${p.name}`).toBe(true);
        expect(Object.keys(op.responses).length).toBeGreaterThan(0);
      }
    }
  });

  it('describes bodies, query parameters, answers and problems with JSON Schemas whose refs all resolve', () => {
    const doc = createOpenApiDocument();
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      expect(isJsonSchema(schema), name).toBe(true);
      expect(schema).not.toHaveProperty('$schema');
    }
    for (const ref of collectRefs(doc)) expect(resolve(doc, ref), ref).toBeDefined();
    const create = doc.paths['/images']?.post as OpenApiOperation;
    expect(create.requestBody?.content['application/json']?.schema).toEqual({ $ref: '#/components/schemas/CreateImageInput' });
    const input = doc.components.schemas.CreateImageInput as { required: string[]; properties: Record<string, { type?: string }> };
    expect(input.required.sort()).toEqual(['instanceId', 'name']);
    expect(input.properties.name?.type).toBe('string');
    // Unknown body fields are refused: every request body says so; names are never trimmed.
    expect(input).toMatchObject({
      additionalProperties: false,
      properties: { name: { description: expect.stringContaining('never trimmed') } },
    });
    for (const route of IMAGES_ROUTES) {
      const op = doc.paths[route.path.replace(/:([A-Za-z0-9]+)/g, '{$1}')]?.[route.method] as OpenApiOperation;
      expect(Object.keys(op.responses), `${route.method} ${route.path}`).toContain('400');
      if (route.body)
        expect(
          resolve(doc, (op.requestBody?.content['application/json']?.schema as { $ref?: string }).$ref ?? '') ??
            op.requestBody?.content['application/json']?.schema,
          route.operationId,
        ).toMatchObject({ additionalProperties: false });
    }
    expect(Object.keys(create.responses).sort()).toEqual([
      '202',
      '400',
      '401',
      '403',
      '404',
      '409',
      '413',
      '415',
      '500',
      '502',
      '503',
      '504',
      '507',
    ]);
    const list = doc.paths['/images']?.get as OpenApiOperation;
    expect(list.parameters.map((p) => [p.name, p.required, (p.schema as { type?: string }).type])).toEqual([
      ['cursor', false, 'string'],
      ['limit', false, 'integer'],
      ['sort', false, 'string'],
      ['direction', false, 'string'],
      ['status', false, 'string'],
    ]);
    const usage = doc.paths['/usage']?.get as OpenApiOperation;
    expect(usage.parameters.filter((p) => p.required).map((p) => [p.name, p.schema])).toEqual([
      ['from', { type: 'string', format: 'date-time' }],
      ['to', { type: 'string', format: 'date-time' }],
    ]);
    const image = doc.components.schemas.Image as { properties: Record<string, unknown> };
    expect(image.properties.createdAt).toEqual({ type: 'string', format: 'date-time' });
    const upload = doc.paths['/admin/isos/upload']?.put as OpenApiOperation;
    expect(Object.keys(upload.requestBody?.content ?? {})).toEqual(['application/octet-stream', 'application/x-iso9660-image']);
    expect(upload.parameters.map((p) => p.name)).toEqual(
      expect.arrayContaining(['name', 'storageId', 'fileKey', 'hypervisorId', 'customerVisible']),
    );
    expect(upload.responses['413']).toEqual({ $ref: '#/components/responses/Problem413' });
    const events = doc.paths['/tasks/{taskId}/events']?.get as OpenApiOperation;
    expect(Object.keys((events.responses['200'] as { content: Record<string, unknown> }).content)).toEqual(['text/event-stream']);
    for (const route of IMAGES_ROUTES.filter((r) => r.admin)) {
      const op = doc.paths[openApiPath(route.path)]?.[route.method] as OpenApiOperation;
      expect(op['x-actor']).toBe('admin');
      expect(op.responses['403']).toBeDefined();
    }
    expect(doc.components.responses.Problem507).toMatchObject({
      content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
    });
  });
});

describe('problem mapping', () => {
  it('maps every SDK error code, with the documented choices', () => {
    for (const code of ERROR_CODES) expect(PROBLEM_STATUS[code], code).toBeDefined();
    const status = (code: keyof typeof PROBLEM_STATUS) => PROBLEM_STATUS[code].status;
    expect(status('VALIDATION_FAILED')).toBe(400);
    expect(status('FORBIDDEN')).toBe(403);
    expect(status('FEATURE_DISABLED')).toBe(403);
    expect(status('NOT_FOUND')).toBe(404);
    for (const code of ['INVALID_STATE', 'IN_USE', 'CONFLICT', 'IMAGE_LIMIT_REACHED', 'CANCELLED'] as const)
      expect(status(code), code).toBe(409);
    expect(status('NO_IMAGE_STORAGE')).toBe(507);
    expect(status('STORAGE_FULL')).toBe(507);
    expect(status('CHECKSUM_MISMATCH')).toBe(422);
    expect(status('STORAGE_UNAVAILABLE')).toBe(503);
    expect(status('HYPERVISOR_UNREACHABLE')).toBe(503);
    expect(status('HOST_KEY_MISMATCH')).toBe(502);
    expect(status('TIMEOUT')).toBe(504);
    expect(status('PAYLOAD_TOO_LARGE')).toBe(413);
    expect(status('UNSUPPORTED_MEDIA_TYPE')).toBe(415);
    expect(status('MALFORMED_JSON')).toBe(400);
    expect(status('UNAUTHENTICATED')).toBe(401);
    expect(status('INTERNAL')).toBe(500);
  });

  it('builds RFC 9457 bodies; 5xx details reach admins only; unknown errors stay generic', () => {
    const validation = new InstanceImagesError('VALIDATION_FAILED', 'The image is not valid: name: too long', {
      fields: [{ path: 'name', message: 'too long' }],
    });
    expect(problemFromError(validation)).toEqual({
      type: 'urn:instance-images:problem:validation-failed',
      title: 'Validation failed',
      status: 400,
      detail: 'The image is not valid: name: too long',
      code: 'VALIDATION_FAILED',
      fields: [{ path: 'name', message: 'too long' }],
    });
    const upstream = new InstanceImagesError('COMMAND_FAILED', 'qemu-img: /var/lib/secret/path: Permission denied', {
      details: { exitCode: 1 },
    });
    expect(problemFromError(upstream, 'customer')).toEqual({
      type: 'urn:instance-images:problem:command-failed',
      title: 'Command failed',
      status: 502,
      detail: 'A command on the hypervisor failed',
      code: 'COMMAND_FAILED',
    });
    expect(problemFromError(upstream, 'admin')).toMatchObject({ detail: upstream.message, details: { exitCode: 1 } });
    expect(problemFromError(new TypeError('x is undefined at /srv/app.js:10'), 'admin')).toEqual({
      type: 'urn:instance-images:problem:internal',
      title: 'Internal error',
      status: 500,
      detail: 'An unexpected error occurred; try again later or contact support',
      code: 'INTERNAL',
    });
    expect(problemFromError(new HttpProblem('UNAUTHENTICATED'))).toMatchObject({
      status: 401,
      code: 'UNAUTHENTICATED',
      detail: 'Sign in to use this API',
    });
    expect(problemFromError('a string')).toMatchObject({ status: 500 });
    // An InstanceImagesError from another copy of the core (separate CommonJS bundles) still maps by its code.
    class ForeignCopy extends Error {
      override name = 'InstanceImagesError';
      code = 'IN_USE';
      fields = [];
      details = { storageId: 's1' };
    }
    expect(problemFromError(new ForeignCopy('Images still live on this storage'))).toMatchObject({
      status: 409,
      code: 'IN_USE',
      detail: 'Images still live on this storage',
      details: { storageId: 's1' },
    });
    const unknownCode = Object.assign(new Error('x'), { name: 'InstanceImagesError', code: 'MADE_UP' });
    expect(problemFromError(unknownCode)).toMatchObject({ status: 500, code: 'INTERNAL' });
  });
});
