/**
 * Generates the typed client's types (`src/client/openapi.ts`) from the router's OpenAPI document
 * with openapi-typescript, so the client's request and answer types come from the same zod schemas
 * as the server.
 *
 * - `npm run client:generate` rewrites the file (after a route or schema change; commit it).
 * - `npm run client:generate -- --check` fails when the committed file is out of date (CI runs it).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString } from 'openapi-typescript';
import { format, resolveConfig } from 'prettier';
import { createOpenApiDocument } from '../adapters/http/openapi';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const target = resolve(root, 'src/client/openapi.ts');
const check = process.argv.includes('--check');

const document = createOpenApiDocument();
const ast = await openapiTS(document as unknown as Parameters<typeof openapiTS>[0], { exportType: false, alphabetize: true });
const header = `/**
 * The HTTP API's types, generated from its OpenAPI document by openapi-typescript
 * (\`npm run client:generate\`; do not edit by hand).
 * @module
 */
`;
const text = await format(header + astToString(ast), { ...(await resolveConfig(target)), filepath: target });
const current = (() => {
  try {
    return readFileSync(target, 'utf8');
  } catch {
    return '';
  }
})();
if (check) {
  if (current !== text) {
    console.error('src/client/openapi.ts is out of date: run `npm run client:generate` and commit it');
    process.exit(1);
  }
  console.log('src/client/openapi.ts is up to date');
} else {
  writeFileSync(target, text);
  console.log(`wrote ${target}`);
}
