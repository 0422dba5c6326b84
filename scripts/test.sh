#!/usr/bin/env bash
# test.sh — `npm test`: the whole suite, on a fresh machine too.
#
#   1. the unit project (in-memory, parallel; `npm run test:unit` runs only this);
#   2. scripts/ensure-services.sh: installs and starts whatever the integration suites need and is
#      missing (libvirt/QEMU + sshd, Ceph radosgw + PostgreSQL, Chromium; needs root the first
#      time), saying what and why; a fast no-op when everything is up;
#   3. scripts/ssh2-binding.sh: ssh2's optional native ciphers, built when Node's headers are here;
#   4. the integration project (one file at a time, against those services). Its summary is the
#      last thing printed.
#
# INSTANCE_IMAGES_SKIP_SERVICES=1 skips step 2: suites whose service is missing are then skipped,
# and a line before vitest's summary counts them and names the command that runs them. In CI
# (CI set) nothing may be skipped: the opt-out is refused, and a skipped test fails the run.
# Arguments go to both vitest runs (with --passWithNoTests, so a file filter may match one project).
set -uo pipefail
cd "$(dirname "$0")/.."
say() { printf '[npm test] %s\n' "$*"; }
vitest() { node node_modules/vitest/vitest.mjs run "$@"; }
args=("$@")
((${#args[@]} == 0)) || args+=(--passWithNoTests)

vitest --project unit "${args[@]}" || exit $?

# ssh2's native ciphers, when this machine has Node's headers (a no-op once built; see the script).
bash scripts/ssh2-binding.sh

if [[ ${INSTANCE_IMAGES_SKIP_SERVICES:-} == 1 ]]; then
  if [[ -n ${CI:-} ]]; then
    say "INSTANCE_IMAGES_SKIP_SERVICES=1 is refused in CI: every integration suite must run"
    exit 1
  fi
  say "INSTANCE_IMAGES_SKIP_SERVICES=1: not installing or starting services; suites whose service is missing are skipped"
else
  bash scripts/ensure-services.sh || exit $?
fi

vitest --project integration "${args[@]}"
