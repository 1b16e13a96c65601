#!/usr/bin/env bash
# Build the release packages evsite_<version>_{amd64,arm64,armhf}.deb: one for this machine
# and, cross-compiled, for a Raspberry Pi with a 64-bit OS (arm64) or a 32-bit one (armhf).
# Needs rustup and, for the cross-linkers, Debian's gcc-aarch64-linux-gnu and
# gcc-arm-linux-gnueabihf (installed here when run as root). Nothing but libc is linked, so
# no multiarch libraries are needed.
#
#     packaging/build-debs.sh [OUTPUT_DIR]      # default target/dist
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-target/dist}
# The cargo-deb release the packaging is written for (see tests/it/package.rs).
cargo_deb_version=3.8.0
cross=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)

if ! command -v cargo-deb >/dev/null 2>&1; then
    cargo install cargo-deb --version "$cargo_deb_version" --locked
fi
rustup target add "${cross[@]}"

need=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v arm-linux-gnueabihf-gcc >/dev/null 2>&1 || need+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing ${need[*]}: run this as root (or install them) first" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
# C code in dependencies (if any) is built with the same cross compilers.
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc

mkdir -p "$out"
# The manual pages come from the command definitions of the binary built here (they are the
# same for every architecture); the package metadata takes them from each target's
# release/man.
cargo build --release --locked --bin evsite
target=${CARGO_TARGET_DIR:-target}
"$target/release/evsite" manpages "$target/release/man"
for t in "${cross[@]}"; do
    mkdir -p "$target/$t/release/man"
    cp "$target"/release/man/*.1.gz "$target/$t/release/man/"
done
# The release profile already strips symbols, so no cross `strip` is needed.
cargo deb --locked --no-strip --output "$out"
for t in "${cross[@]}"; do
    cargo deb --locked --no-strip --target "$t" --output "$out"
done

echo
echo "release binary sizes:"
for bin in target/release/evsite target/{aarch64-unknown-linux-gnu,armv7-unknown-linux-gnueabihf}/release/evsite; do
    printf '  %-52s %10d bytes\n' "$bin" "$(stat -c %s "$bin")"
done
echo "packages in $out:"
ls -l "$out"/*.deb
