/**
 * The OpenAPI document checked with tools nobody here wrote: Redocly's recommended rules (the
 * linter openapi-typescript users run) and Ajv in strict 2020-12 mode over every schema. Plus the
 * problem+json answers to unknown paths and methods.
 */
import { createConfig, lintFromString } from '@redocly/openapi-core';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { createOpenApiDocument } from '../../../adapters/express';
import { startExpressHarness, describeEachServer } from '../../support/express-harness';

describe('the OpenAPI document, checked by other tools', () => {
  it("passes Redocly's recommended rules with no error and no warning", async () => {
    const document = createOpenApiDocument({ serverUrl: 'https://panel.example/api' });
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({ source: JSON.stringify(document), absoluteRef: 'openapi.json', config });
    const summary = problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? ''}`);
    expect(summary).toEqual([]);
    expect(document.tags.filter((t) => !(t as { description?: string }).description)).toEqual([]);
  });

  it('compiles every component schema with Ajv (2020-12, strict)', () => {
    const document = createOpenApiDocument();
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats(ajv);
    ajv.addVocabulary(['example', 'xml', 'externalDocs', 'discriminator', 'components']);
    ajv.addSchema({ $id: 'openapi.json', components: { schemas: document.components.schemas } });
    for (const name of Object.keys(document.components.schemas)) {
      expect(() => ajv.getSchema(`openapi.json#/components/schemas/${name}`), name).not.toThrow();
    }
    // Every query parameter can be sent as text: none is documented as nullable.
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const operation of Object.values(operations)) {
        for (const parameter of operation.parameters) {
          expect(JSON.stringify(parameter.schema), `${path} ${parameter.name}`).not.toContain('"null"');
        }
      }
    }
  });

  it('documents the Location header of the answers that send one, and the host-defined security', () => {
    const document = createOpenApiDocument({ securitySchemes: { panelKey: { type: 'apiKey', in: 'header', name: 'X-Panel-Key' } } });
    const created = document.paths['/images']?.post?.responses['202'] as { headers?: Record<string, unknown> };
    expect(created.headers?.Location).toBeDefined();
    expect(document.security).toEqual([{ panelKey: [] }]);
    expect(document.components.securitySchemes).toEqual({ panelKey: { type: 'apiKey', in: 'header', name: 'X-Panel-Key' } });
    expect(document.paths['/health']?.get?.security).toEqual([]);
    expect(document.paths['/openapi.json']?.get?.security).toEqual([]);
  });
});

describeEachServer((server) => {
  describe('HTTP API: unknown paths and methods', () => {
    it('answers problem+json 404 to an unknown path and 405 with Allow to a known path with another method', async () => {
      const t = await startExpressHarness({ server });
      try {
        const unknown = await t.call('GET', '/no-such-thing');
        expect(unknown.status).toBe(404);
        expect(unknown.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(unknown.json.code).toBe('NOT_FOUND');
        const wrong = await t.call('PUT', '/images');
        expect(wrong.status).toBe(405);
        expect(wrong.json.code).toBe('METHOD_NOT_ALLOWED');
        expect(wrong.headers.get('allow')).toBe('GET, POST, HEAD');
        const unauthenticated = await t.call('DELETE', '/openapi.json', { actor: null });
        expect(unauthenticated.status).toBe(405);
      } finally {
        await t.close();
      }
    });
  });
});
