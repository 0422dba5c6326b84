#!/usr/bin/env bash
# ensure-services.sh — make sure every service the integration suites need is there; install and
# start what is missing with the repository's own scripts, saying what and why. `npm test` runs it
# between the unit and the integration project; it can also run alone.
#
#   libvirt/QEMU + sshd on 127.0.0.1:2222    scripts/setup-hypervisor.sh start
#   Ceph radosgw (S3) + PostgreSQL + Redis   scripts/start-services.sh start
#   Debian's Chromium                        scripts/setup-browser.sh
#
# The check (scripts/lib/services-probe.mjs) asks what the suites ask, so "all up" means no suite
# skips; when all are up nothing is started or written, and this takes well under a second.
# Installing needs root and Debian's apt; without root, a missing service is an error that names
# the commands to run as root (or the opt-out, INSTANCE_IMAGES_SKIP_SERVICES=1 npm test).
set -uo pipefail
# Daemons started from here must not inherit descriptors beyond stdio: a caller's lock (e.g.
# `flock /tmp/itest.lock scripts/...`) would otherwise be held by libvirtd, radosgw or PostgreSQL
# for as long as they run. (Bash keeps its script on fd 255: only 3–199 are closed.)
for fd in /proc/$$/fd/*; do fd=${fd##*/}; [[ $fd =~ ^[0-9]+$ && $fd -gt 2 && $fd -lt 200 ]] && eval "exec $fd>&-" 2>/dev/null; done
cd "$(dirname "$0")/.."
say() { printf '[services] %s\n' "$*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

declare -A NEEDED_BY=(
  [hypervisor]="libvirt/QEMU and sshd on 127.0.0.1:2222, for the libvirt, SSH executor, local storage, security, e2e and example suites"
  [services]="Ceph radosgw (S3) on 127.0.0.1:7480, PostgreSQL on 127.0.0.1:55432 and Redis on 127.0.0.1:6390, for the S3 storage, e2e, PostgreSQL and BullMQ suites"
  [browser]="Debian's Chromium, for the example panel's browser test"
)
declare -A COMMAND=(
  [hypervisor]="bash scripts/setup-hypervisor.sh start"
  [services]="bash scripts/start-services.sh start"
  [browser]="bash scripts/setup-browser.sh"
)
declare -A FIRST_TIME=(
  [hypervisor]="apt-get install libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils openssh-server xorriso, then start libvirtd and a loopback sshd: about 30 s"
  [services]="apt-get install radosgw ceph-mon ceph-osd postgresql redis-server curl, then bootstrap a one-node Ceph cluster, a private PostgreSQL cluster and a private Redis: about 1 minute"
  [browser]="apt-get install chromium: about 30 s"
)

t0=$(now_ms)
probe=$(node scripts/lib/services-probe.mjs) || { say "could not check the services (scripts/lib/services-probe.mjs failed)"; exit 1; }
groups=()
while IFS=$'\t' read -r group reason; do
  [[ -n $group ]] || continue
  groups+=("$group")
  say "missing: ${NEEDED_BY[$group]} ($reason)"
done <<<"$probe"

if ((${#groups[@]})); then
  if [[ $(id -u) != 0 ]]; then
    say "installing and starting them needs root. Run 'sudo npm test', or as root:"
    for group in "${groups[@]}"; do say "  ${COMMAND[$group]}"; done
    say "or run without them: INSTANCE_IMAGES_SKIP_SERVICES=1 npm test (their suites are then skipped)"
    exit 1
  fi
  for group in "${groups[@]}"; do
    say "running ${COMMAND[$group]}: installs what is missing, starts what is stopped (the first time: ${FIRST_TIME[$group]})"
    ${COMMAND[$group]} </dev/null || { say "${COMMAND[$group]} failed; see its output above"; exit 1; }
  done
  probe=$(node scripts/lib/services-probe.mjs) || exit 1
  if [[ -n $probe ]]; then
    while IFS=$'\t' read -r group reason; do say "still missing after ${COMMAND[$group]}: $reason"; done <<<"$probe"
    exit 1
  fi
fi
say "up: libvirt/QEMU, sshd 127.0.0.1:2222, radosgw 127.0.0.1:7480, PostgreSQL 127.0.0.1:55432, Redis 127.0.0.1:6390, Chromium ($(($(now_ms) - t0)) ms)"
