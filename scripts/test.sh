#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what the tests need on a fresh
# Debian machine, then checks formatting, lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v socat >/dev/null 2>&1 || need+=(socat)
# The package tests: dpkg-deb and dpkg-query, systemd-sysusers for the service user in a
# scratch root, systemd-analyze to verify the unit.
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
command -v lintian >/dev/null 2>&1 || need+=(lintian)
command -v systemd-sysusers >/dev/null 2>&1 || need+=(systemd)
# The status page test (tests/it/api.rs) renders the page in headless Chromium.
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
command -v faketime >/dev/null 2>&1 || need+=(faketime)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing ${need[*]}: run this as root (or install them) first" >&2
        exit 1
    fi
    echo "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"
# cargo-deb builds the .deb in tests/it/package.rs; the version its metadata is written for.
cargo_deb_version=3.8.0
if ! cargo deb --version 2>/dev/null | grep -q "$cargo_deb_version"; then
    echo "installing cargo-deb $cargo_deb_version"
    cargo install cargo-deb --version "$cargo_deb_version" --locked --quiet
fi

cargo fmt --all -- --check
# The model files' modules are declared by build.rs, out of cargo fmt's sight.
rustfmt --edition 2021 --check src/devices/meters/*.rs src/devices/chargers/*.rs
cargo clippy --workspace --all-targets --locked -- -D warnings
# The tests that hold delivery to the broker within windows of real time (a demo at 60×
# speed through a 30-minute outage, the daemon killed and restarted around a broker outage)
# run after the rest, on their own: beside every other test on two cores their windows
# measure the machine's load, not evsite.
realtime=(outage:: mqtt_daemon::)
skip=()
for t in "${realtime[@]}"; do skip+=(--skip "$t"); done
cargo test --workspace --locked -- "${skip[@]}"
cargo test --locked --test it -- "${realtime[@]}"
