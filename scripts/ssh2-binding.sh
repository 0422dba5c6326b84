#!/usr/bin/env bash
# ssh2-binding.sh — builds ssh2's optional native crypto binding in node_modules, when it can.
#
# Without it ssh2 decrypts every SSH packet with a new Node cipher object in JavaScript; with it
# AES-GCM and ChaCha20-Poly1305 run in C++. Measured on the test machine (npm run bench --
# chunked-s3, CPU=1): a 64 MiB incremental recapture used 0.43–0.46 s of panel CPU against
# 0.50–0.61 s, and took 0.67–0.74 s against 0.74–0.80 s.
#
# ssh2's own install script builds it with node-gyp `--target=<node version>`, which looks for
# Node's headers to download from nodejs.org (it failed so here: this machine reaches only the npm
# registry); this project does not run that script (package.json "allowScripts"). Here the build
# uses the headers installed with Node itself (<prefix>/include/node, of the same version as
# `node`), and is skipped, saying why, when they or npm's node-gyp are missing. ssh2 works either way (it falls back to JavaScript, as it
# does when the binding was built for another Node version). A no-op when the binding loads.
# `npm test` and `npm run bench` run it; panels that embed the SDK: see docs/operations.md.
set -uo pipefail
cd "$(dirname "$0")/.."
say() { printf '[ssh2 binding] %s\n' "$*"; }
dir=node_modules/ssh2/lib/protocol/crypto
[[ -d $dir ]] || exit 0
node -e "require('./$dir/build/Release/sshcrypto.node')" 2>/dev/null && exit 0
prefix=$(dirname "$(dirname "$(command -v node)")")
headers=$prefix/include/node/node_version.h
gyp=$(npm prefix -g 2>/dev/null)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
if [[ ! -f $headers ]]; then say "not built: no Node headers in $prefix/include/node (ssh2 uses its JavaScript ciphers)"; exit 0; fi
version=$(awk '/#define NODE_(MAJOR|MINOR|PATCH)_VERSION/ { v = v (v == "" ? "" : ".") $3 } END { print "v" v }' "$headers")
if [[ $version != "$(node -v)" ]]; then say "not built: the headers are of Node $version, not $(node -v)"; exit 0; fi
if [[ ! -f $gyp ]]; then say "not built: npm's node-gyp not found at $gyp"; exit 0; fi
openssl=$(node -p "process.versions.openssl.split('.')[0]")
log=$(mktemp)
if (cd "$dir" && node "$gyp" rebuild --nodedir="$prefix" --real_openssl_major="$openssl") >"$log" 2>&1 &&
  node -e "require('./$dir/build/Release/sshcrypto.node')" 2>/dev/null; then
  say "built (AES-GCM and ChaCha20 in C++)"
else
  say "not built (ssh2 uses its JavaScript ciphers); node-gyp said:"
  tail -5 "$log"
fi
rm -f "$log"
exit 0
