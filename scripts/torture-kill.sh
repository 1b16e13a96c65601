#!/usr/bin/env bash
# Kill the real daemon with SIGKILL N times at random points while cars come and go on a
# served site and a real Mosquitto takes its messages, then check every vehicle's energy
# against the stored and published sessions (tests/it/torture.rs). Loopback only; bounded.
#
#   scripts/torture-kill.sh [N] [SEED]     (default N = 20; the test command runs 4)
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${1:-20}"
seed="${2:-20261203}"
case "$kills" in ''|*[!0-9]*) echo "usage: $0 [N] [SEED]" >&2; exit 64 ;; esac
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || {
    echo "mosquitto is needed: apt-get install mosquitto (scripts/test.sh installs it)" >&2
    exit 69
}
export PATH="$PATH:/usr/sbin"
EVSITE_TORTURE_KILLS="$kills" EVSITE_TORTURE_SEED="$seed" \
    cargo test --locked --test it torture:: -- --nocapture --test-threads 1
