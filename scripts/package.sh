#!/usr/bin/env bash
# Builds the Debian package (build-pkg/pubsubgw_VERSION_ARCH.deb): a Release build installed
# under /usr with its configuration in /etc, packed by CPack.
#   sudo apt-get install ./build-pkg/pubsubgw_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build-pkg -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
    -DPUBSUBGW_TESTS=OFF >/dev/null
cmake --build build-pkg -j "$(nproc)" --target pubsubgw
(cd build-pkg && cpack -G DEB >/dev/null)
ls build-pkg/pubsubgw_*.deb
