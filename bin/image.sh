#!/usr/bin/env bash
# The coflows container image, built and run with podman on a machine without an image registry
# (docs/container.md). Everything specific to this kind of machine lives here, not in the Dockerfile,
# so that on an ordinary host `docker build .` / `docker run` work unchanged.
#
#   bin/image.sh [build] [podman build options]      build coflows:latest (the Debian base first, if needed)
#   bin/image.sh base [--rebuild]                    make (or remake) only the Debian base
#   bin/image.sh run [podman run options] [-- coflows args]
#                                                    run it: e.g. bin/image.sh run -d -p 127.0.0.1:8080:8080 -v $PWD/mnt:/app/mnt
#   bin/image.sh size                                the image's size
#   bin/image.sh podman ARGS…                        podman with this machine's options (ps, logs, exec, healthcheck run…)
#
# The base: no registry is reachable, so `debian:bookworm-slim` is made here with debootstrap (minbase)
# and imported into podman under that name. The root file system is kept as a tar in
# $COFLOWS_IMAGE_CACHE (default /var/cache/coflows/image) with a stamp naming its recipe; it is remade
# only when missing or when the recipe changes, and re-imported when podman has lost the image.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${COFLOWS_IMAGE:-coflows:latest}
BASE=debian:bookworm-slim
SUITE=bookworm
MIRROR=${COFLOWS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${COFLOWS_IMAGE_CACHE:-/var/cache/coflows/image}
# The host's CA bundle: pip and npm inside the build, and the server's package downloads at run time,
# trust what the host trusts (here: an egress proxy's CA).
CA=${COFLOWS_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
# This machine: crun fails (setrlimit, hybrid cgroups) and there is no systemd: runc, cgroupfs, no default ulimits.
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/bin/containers.conf}
PODMAN=(podman --runtime runc --cgroup-manager=cgroupfs)
# Bump when make_rootfs changes: the cached base is then remade.
RECIPE="coflows-base v1 $SUITE minbase $MIRROR"

SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
say() { echo "coflows image: $*" >&2; }
die() { say "$*"; exit 2; }
have() { command -v "$1" >/dev/null 2>&1; }

need_tools() {
  local t
  for t in podman buildah runc debootstrap; do
    have "$t" || die "$t is missing: run bin/setup.sh --image"
  done
}

# Debian bookworm minbase, trimmed like the official -slim image (no docs, man pages or locales).
make_rootfs() {
  local root=$1
  say "debootstrap --variant=minbase $SUITE from $MIRROR (about a minute)…"
  $SUDO debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" 2>&1 \
    | grep --line-buffered -E '^(I: (Retrieving|Validating|Extracting|Installing|Configuring|Base system)|E: |W: )' \
    | awk '{ n++; if ($1 != "I:" || n % 25 == 1 || /Base system/) print "  " $0; fflush() }' >&2
  [[ -x $root/usr/bin/apt-get ]] || die "debootstrap failed (no apt-get in $root)"
  $SUDO tee "$root/etc/apt/sources.list" >/dev/null <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
  $SUDO tee "$root/etc/dpkg/dpkg.cfg.d/slim" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
EOF
  $SUDO tee "$root/etc/apt/apt.conf.d/slim" >/dev/null <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
EOF
  # the JDK's postinst writes man-page alternatives into man1 even when man pages are excluded
  $SUDO mkdir -p "$root/usr/share/man/man1"
  $SUDO find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  $SUDO find "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/locale" -mindepth 1 -not -path '*/man1' -delete 2>/dev/null || true
  $SUDO rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/tmp/*
}

# The cached tar is current, or is remade; then podman has it as debian:bookworm-slim.
ensure_base() {
  local rebuild=${1:-0} tar="$CACHE/$SUITE-minbase.tar" stamp="$CACHE/$SUITE-minbase.stamp" id=""
  $SUDO mkdir -p "$CACHE"
  if [[ $rebuild -eq 1 || ! -s $tar || ! -f $stamp || "$(head -n1 "$stamp")" != "$RECIPE" ]]; then
    local t0=$SECONDS root
    root=$($SUDO mktemp -d "$CACHE/rootfs.XXXXXX")
    trap '$SUDO rm -rf "$root"' EXIT
    make_rootfs "$root"
    $SUDO tar --numeric-owner -C "$root" -cf "$tar.part" .
    $SUDO mv "$tar.part" "$tar"
    $SUDO rm -rf "$root"
    trap - EXIT
    echo "$RECIPE" | $SUDO tee "$stamp" >/dev/null
    say "base root file system made in $((SECONDS - t0)) s: $tar ($(du -m "$tar" | cut -f1) MB)"
  fi
  # Imported from this tar (its image ID is on the stamp's second line), or import it now.
  id=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$BASE" 2>/dev/null || true)
  if [[ -z $id || "$id" != "$(sed -n 2p "$stamp")" ]]; then
    say "importing $tar as $BASE"
    id=$($SUDO cat "$tar" | "${PODMAN[@]}" import --quiet \
      --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD=["bash"]' - "$BASE")
    id=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$BASE")
    printf '%s\n%s\n' "$RECIPE" "$id" | $SUDO tee "$stamp" >/dev/null
  fi
}

build() {
  need_tools
  local t0=$SECONDS
  ensure_base 0
  say "building $IMAGE (layers are cached by podman; --no-cache to rebuild all)…"
  local secret=()
  [[ -r $CA ]] && secret=(--secret "id=ca,src=$CA")
  # --format docker keeps HEALTHCHECK (the OCI format has no such field); chroot isolation: no nested namespaces here.
  "${PODMAN[@]}" build --isolation=chroot --format docker --layers "${secret[@]}" -t "$IMAGE" -f Dockerfile "$@" .
  say "built $IMAGE in $((SECONDS - t0)) s; $(size_line)"
}

size_line() {
  local bytes
  bytes=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE") || die "no image $IMAGE: run bin/image.sh build"
  echo "size $((bytes / 1000000)) MB ($bytes bytes)"
}

run() {
  local opts=() args=()
  while [[ $# -gt 0 ]]; do
    if [[ $1 == "--" ]]; then shift; args=("$@"); break; fi
    opts+=("$1"); shift
  done
  "${PODMAN[@]}" image exists "$IMAGE" || die "no image $IMAGE: run bin/image.sh build"
  local ca=()
  [[ -r $CA ]] && ca=(-v "$CA:/etc/ssl/certs/ca-certificates.crt:ro")
  exec "${PODMAN[@]}" run "${ca[@]}" "${opts[@]}" "$IMAGE" "${args[@]}"
}

cmd=${1:-build}
case "$cmd" in
  build) shift || true; build "$@" ;;
  -*) build "$@" ;;
  base) need_tools; shift; [[ "${1:-}" == "--rebuild" ]] && ensure_base 1 || ensure_base 0 ;;
  run) shift; run "$@" ;;
  size) "${PODMAN[@]}" images --filter "reference=${IMAGE%%:*}"; echo "$IMAGE: $(size_line)" ;;
  podman) shift; exec "${PODMAN[@]}" "$@" ;;
  -h|--help|help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
  *) die "unknown command '$cmd' (build, base, run, size, podman)" ;;
esac
