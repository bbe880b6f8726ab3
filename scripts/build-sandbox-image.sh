#!/usr/bin/env bash
# Builds the docker driver's sandbox image without pulling anything: a Debian rootfs from debootstrap (Debian's
# mirror is reachable where registries are not), the host's Node.js with its npm, npx and corepack, the host's CA
# bundle, the sandbox user, then `podman import`. The result matches sandbox/image/Dockerfile. Skips the build when
# the image exists with this recipe's label.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${NIGHTSHIFT_DOCKER_IMAGE:-nightshift-sandbox:latest}
SUITE=bookworm
MIRROR=${NIGHTSHIFT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE=$(command -v node)
# npm and corepack, where the host's Node.js keeps them (npm's bin is a link into <prefix>/lib/node_modules/npm).
NODE_LIB=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/../.." && pwd)
[ -f "$NODE_LIB/npm/package.json" ] || { echo "no npm in $NODE_LIB (the host's Node.js installation)" >&2; exit 1; }
# corepack when the host's Node.js has it (Node.js 25 no longer ships it).
NODE_TOOLS=npm
[ -f "$NODE_LIB/corepack/package.json" ] && NODE_TOOLS="npm corepack"
# The host's CA bundle, so TLS through an egress that re-signs it (a corporate proxy) is trusted inside as on the host.
CA_BUNDLE=${NIGHTSHIFT_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$CA_BUNDLE" ] || { echo "no CA bundle at $CA_BUNDLE (set NIGHTSHIFT_CA_BUNDLE)" >&2; exit 1; }
# The agent CLIs (project dependencies) are copied in, at the path bwrap sandboxes see them (agents/cli.ts).
CLI_SCOPES="node_modules/@anthropic-ai node_modules/@openai"
# The recipe: this script, the Node.js, npm, corepack and CLI versions and the CA bundle it copies in. A change to any rebuilds.
RECIPE=$( (cat "$0"; "$NODE" --version; for t in $NODE_TOOLS; do cat "$NODE_LIB/$t/package.json"; done
  for s in $CLI_SCOPES; do cat "$s"/*/package.json; done; cat "$CA_BUNDLE") | sha256sum | cut -c1-16)

if podman image exists "$IMAGE" && [ "$(podman image inspect --format '{{index .Labels "nightshift.recipe"}}' "$IMAGE")" = "$RECIPE" ]; then
  exit 0
fi

CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/nightshift/image
ROOTFS=$(mktemp -d "${TMPDIR:-/tmp}/nightshift-rootfs.XXXXXX")
trap 'rm -rf "$ROOTFS"' EXIT
mkdir -p "$CACHE/debs"

echo "sandbox image: debootstrap $SUITE into $ROOTFS (about 2 minutes the first time)…"
debootstrap --variant=minbase --include=git,curl,ca-certificates --cache-dir="$CACHE/debs" \
  "$SUITE" "$ROOTFS" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 \
  || { echo "debootstrap failed; see $CACHE/debootstrap.log" >&2; tail -5 "$CACHE/debootstrap.log" >&2; exit 1; }

install -m 0755 "$NODE" "$ROOTFS/usr/local/bin/node"
chroot "$ROOTFS" /usr/local/bin/node --version > /dev/null || { echo "the host's node does not run in the rootfs" >&2; exit 1; }
# Laid out as Node.js's own installs are (<prefix>/lib/node_modules, links in <prefix>/bin), under /usr/local.
install -d "$ROOTFS/usr/local/lib/node_modules"
for t in $NODE_TOOLS; do cp -a "$NODE_LIB/$t" "$ROOTFS/usr/local/lib/node_modules/"; done
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"
[ -d "$ROOTFS/usr/local/lib/node_modules/corepack" ] && ln -s ../lib/node_modules/corepack/dist/corepack.js "$ROOTFS/usr/local/bin/corepack"
install -m 0644 "$CA_BUNDLE" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
for t in npx git $NODE_TOOLS; do
  chroot "$ROOTFS" env PATH=/usr/local/bin:/usr/bin:/bin "$t" --version > /dev/null || { echo "$t does not run in the rootfs" >&2; exit 1; }
done
chroot "$ROOTFS" useradd --uid 1000 --user-group --create-home --home-dir /home/sandbox --shell /bin/sh sandbox
install -d -o 1000 -g 1000 "$ROOTFS/workspace"
install -d "$ROOTFS/opt/nightshift/node_modules"
for s in $CLI_SCOPES; do cp -a "$s" "$ROOTFS/opt/nightshift/node_modules/"; done
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*

echo "sandbox image: importing as $IMAGE…"
tar -C "$ROOTFS" -c . | podman import --quiet \
  --change 'USER 1000:1000' --change 'WORKDIR /workspace' --change 'CMD ["/bin/sh"]' \
  --change "LABEL nightshift.recipe=$RECIPE" - "$IMAGE" > /dev/null
echo "sandbox image: $IMAGE built"
