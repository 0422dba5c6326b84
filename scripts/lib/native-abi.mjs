/**
 * Preloaded with `NODE_OPTIONS=--import=<this file>` by scripts/test-node-versions.sh when the tests
 * run on a Node major other than the one `npm install` built the native addons for. An addon only
 * loads into the Node ABI it was compiled for, so that script compiles the same sources once per
 * extra Node into .tmp/ and names the results in two variables; this hook makes every load of
 * node_modules' own file (from the test workers and from the processes they spawn, which inherit
 * NODE_OPTIONS) resolve to that build instead. The JavaScript of the packages and everything in
 * node_modules stay as they are.
 *
 * - `II_BETTER_SQLITE3_BINARY`: better-sqlite3's `better_sqlite3.node` (the SQLite adapter).
 * - `II_SSH2_BINARY`: ssh2's optional `sshcrypto.node` (AES-GCM and ChaCha20 in C++; without it
 *   ssh2 uses its JavaScript ciphers, as a panel whose install could not build it does).
 */
import { existsSync } from 'node:fs';
import * as nodeModule from 'node:module';
import process from 'node:process';
import { pathToFileURL } from 'node:url';

/** Each addon's file in node_modules (the end of its resolved URL), and the variable naming its build. */
const ADDONS = [
  { file: '/better-sqlite3/build/Release/better_sqlite3.node', variable: 'II_BETTER_SQLITE3_BINARY' },
  { file: '/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node', variable: 'II_SSH2_BINARY' },
];

const redirects = [];
for (const { file, variable } of ADDONS) {
  const binary = process.env[variable];
  if (!binary) continue;
  if (!existsSync(binary)) throw new Error(`${variable} names ${binary}, which does not exist (run scripts/test-node-versions.sh)`);
  redirects.push({ file, url: pathToFileURL(binary).href });
}
if (redirects.length > 0) {
  if (typeof nodeModule.registerHooks !== 'function')
    throw new Error(`module.registerHooks needs Node 22.15 or later; this is ${process.version}`);
  nodeModule.registerHooks({
    resolve(specifier, context, nextResolve) {
      const result = nextResolve(specifier, context);
      const redirect = redirects.find(({ file }) => result.url.endsWith(file));
      return redirect ? { ...result, url: redirect.url } : result;
    },
  });
}
