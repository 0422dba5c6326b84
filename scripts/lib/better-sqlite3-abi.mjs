/**
 * Preloaded with `NODE_OPTIONS=--import=<this file>` by scripts/test-node-versions.sh when the unit
 * tests run on a Node major other than the one `npm install` built better-sqlite3 for. A native
 * addon only loads into the Node ABI it was compiled for, so that script compiles the same
 * better-sqlite3 sources once per extra Node into .tmp/ and names the result in
 * II_BETTER_SQLITE3_BINARY; this hook makes every load of node_modules' better_sqlite3.node
 * (from the test workers and from the processes they spawn, which inherit NODE_OPTIONS) resolve to
 * that file instead. The JavaScript of the package and everything in node_modules stay as they are.
 */
import { existsSync } from 'node:fs';
import * as nodeModule from 'node:module';
import process from 'node:process';
import { pathToFileURL } from 'node:url';

const binary = process.env.II_BETTER_SQLITE3_BINARY;
if (binary) {
  if (!existsSync(binary))
    throw new Error(`II_BETTER_SQLITE3_BINARY names ${binary}, which does not exist (run scripts/test-node-versions.sh)`);
  if (typeof nodeModule.registerHooks !== 'function')
    throw new Error(`module.registerHooks needs Node 22.15 or later; this is ${process.version}`);
  const target = pathToFileURL(binary).href;
  nodeModule.registerHooks({
    resolve(specifier, context, nextResolve) {
      const result = nextResolve(specifier, context);
      return result.url.endsWith('/better-sqlite3/build/Release/better_sqlite3.node') ? { ...result, url: target } : result;
    },
  });
}
