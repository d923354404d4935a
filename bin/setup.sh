#!/usr/bin/env bash
# Set up everything coflows needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages (Mono, a JDK, PostgreSQL for tests), the Python venv with the
# coflows package, and the npm packages of the web UI. Quiet when nothing to do.
#
#   bin/setup.sh            # runtime needs (server, build, query)
#   bin/setup.sh --test     # plus what the tests need (PostgreSQL server, Chromium, the image tools)
#   bin/setup.sh --image    # plus podman, buildah, runc and debootstrap (bin/image.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
want_image=0
[[ "${1:-}" == "--test" ]] && want_test=1 && want_image=1
[[ "${1:-}" == "--image" ]] && want_image=1

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# Mono with its full class libraries (mono-runtime alone lacks netstandard.dll: ENGINES.md)
[[ -f /usr/lib/mono/4.5/Facades/netstandard.dll ]] && have mcs || missing+=(mono-devel)
# Json.NET (6.0.8) in Mono's GAC: C# code written for CoFlows uses Newtonsoft.Json (docs/compat-csharp.md)
pkg_installed libnewtonsoft-json5.0-cil || missing+=(libnewtonsoft-json5.0-cil)
# A JDK, not a JRE: the Java engine compiles with javax.tools
have javac || missing+=(default-jdk-headless)
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
have curl || missing+=(curl)
# node and npm: the web UI's libraries come from npm (package.json, pinned by package-lock.json)
have npm || missing+=(nodejs npm)
if [[ $want_test -eq 1 ]]; then
  { [[ -x /usr/lib/postgresql/15/bin/initdb ]] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing+=(postgresql)
  have wrk || missing+=(wrk)
  # the load balancer in front of the replicas of tests/test_replicas.py and bench/replicas.py
  have haproxy || [[ -x /usr/sbin/haproxy ]] || missing+=(haproxy)
  # headless Chromium for the browser tests (playwright-core drives it; it never downloads one)
  have chromium || missing+=(chromium)
fi
if [[ $want_image -eq 1 ]]; then
  # the container image (bin/image.sh, docs/container.md): podman builds and runs it, debootstrap makes its base
  for tool in podman buildah runc debootstrap; do have $tool || missing+=($tool); done
fi

if [[ ${#missing[@]} -gt 0 ]]; then
  if ! have apt-get; then
    echo "coflows setup: please install: ${missing[*]} (no apt-get here)" >&2
    exit 1
  fi
  echo "coflows setup: installing system packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# Python venv with coflows installed (editable), reinstalled when pyproject.toml changes.
PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "coflows setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.coflows-installed
extras="dask,test,jupyter,azure"
sig="$(sha1sum pyproject.toml | cut -d' ' -f1)-$extras"
if [[ ! -f $stamp || "$(cat $stamp)" != "$sig" ]]; then
  echo "coflows setup: installing the coflows package and its dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e ".[$extras]" >&2
  echo "$sig" > $stamp
fi

# Pebble, the ACME test server of tests/test_tls_acme.py: built once with go into a cache outside the repo
if [[ $want_test -eq 1 ]]; then
  GO=$(command -v go || echo /usr/local/go/bin/go)
  gobin=${COFLOWS_GO_BIN:-/var/cache/coflows/go-bin}
  if [[ -x $GO && ! -f $gobin/.pebble-v2.10.3 ]]; then
    echo "coflows setup: building pebble v2.10.3 into $gobin" >&2
    mkdir -p "$gobin" && GOBIN=$gobin "$GO" install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3 \
      github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@v2.10.3 >&2 && touch "$gobin/.pebble-v2.10.3"
  fi
fi

# npm packages of the web UI and browser tests (pinned by package-lock.json)
if [[ -f package.json ]] && have npm; then
  lock_sig="$(cat package.json package-lock.json 2>/dev/null | sha1sum | cut -d' ' -f1)"
  if [[ ! -d node_modules || "$(cat node_modules/.coflows-installed 2>/dev/null)" != "$lock_sig" ]]; then
    echo "coflows setup: installing npm packages" >&2
    if [[ -f package-lock.json ]]; then npm ci --silent --no-audit --no-fund >&2; else npm install --silent --no-audit --no-fund >&2; fi
    echo "$lock_sig" > node_modules/.coflows-installed
  fi
fi
