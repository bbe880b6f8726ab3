#!/usr/bin/env bash
# Installs what a fresh machine lacks for Nightshift: git and bubblewrap (Debian packages), the npm dependencies,
# the build, and the Temporal CLI (found, or built with Go by temporal/cli.ts, with progress shown; not with
# TEMPORAL_ADDRESS set, a server of one's own).
# With --docker (the tests and benchmarks): also Podman, runc, debootstrap, Chromium, sqlite3, gpg, pytest and cargo, the docker driver's sandbox image,
# and cosign and Gitea (built with Go; Gitea runs as the system user nightshift-gitea under root).
# With --cluster (npm run test:cluster): also PostgreSQL, and the Temporal server and its SQL tool (built with Go).
set -euo pipefail
cd "$(dirname "$0")/.."

docker=false
cluster=false
for arg in "$@"; do
  case "$arg" in
    --docker) docker=true ;;
    --cluster) cluster=true ;;
    *) echo "setup: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
command -v git >/dev/null 2>&1 || missing+=(git)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
if $docker; then
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)   # the web page's browser test
  command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)     # reading a killed dev server's database (chaos, durability)
  command -v gpg >/dev/null 2>&1 || missing+=(gnupg)           # a commit signed with OpenPGP (signing: verify --commit refuses it)
  # The sandbox sees the system python3 (not one a version manager put first on PATH).
  /usr/bin/python3 -m pytest --version >/dev/null 2>&1 || missing+=(python3-pytest)   # the harness attacks on a Python project
  # The runners the judge reads, run for real (test/runnerOutputs.test.ts): Go is given; rustup's cargo or Debian's.
  [ -x "$HOME/.cargo/bin/cargo" ] || command -v cargo >/dev/null 2>&1 || missing+=(cargo)
fi
if $cluster; then
  [ -x /usr/lib/postgresql/15/bin/pg_ctl ] || missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${missing[*]} (apt-get)…"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing ${missing[*]}; install them (e.g. sudo apt-get install ${missing[*]}) and run again" >&2
    exit 1
  fi
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies…"
  npm ci --no-audit --no-fund --loglevel=error
fi

npm run build --silent

# Find or build Go tools with one of temporal/cli.ts's ensure functions, its progress on our output.
ensure_tools() {
  node -e "require('./dist/temporal/cli').$1((line) => console.log('setup: ' + line)).catch((err) => { console.error('setup: ' + err.message); process.exit(1); })"
}

if [ -z "${TEMPORAL_ADDRESS:-}" ]; then ensure_tools ensureTemporal; fi
# The same for the tests' own tools, with an ensure function of a test helper.
ensure_test_tool() {
  node -e "require('./dist/test/helpers/$1').$2((line) => console.log('setup: ' + line)).catch((err) => { console.error('setup: ' + err.message); process.exit(1); })"
}

if $docker; then
  bash scripts/build-sandbox-image.sh
  # cosign, the tests' independent proof verifier (about 4.5 minutes to build the first time).
  ensure_test_tool cosign ensureCosign
  # Gitea, the forge the tests push to and take webhooks from (about 5 minutes to build the first time). It refuses to
  # run as root: under root the tests run it as a system user of its own (test/helpers/gitea.ts GITEA_USER).
  if [ "$(id -u)" = 0 ] && ! id nightshift-gitea >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nightshift-gitea
  fi
  ensure_test_tool gitea ensureGitea
fi
if $cluster; then ensure_tools ensureClusterTools; fi
