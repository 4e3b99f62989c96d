#!/usr/bin/env bash
# Installs everything hyperhive needs on a fresh Debian machine: system packages (when root),
# a venv at .venv with the package and its dev extras. Idempotent; fast when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[bootstrap] $*" >&2; }

# postgresql: the throwaway test clusters (tests/support/postgres.py run initdb/pg_ctl as `nobody`)
want_debs=(bubblewrap slirp4netns iproute2 git chromium chromium-driver util-linux postgresql)
missing=()
for p in "${want_debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "not root: cannot install ${missing[*]} (sandbox / browser tests will say why they skip)"
  fi
fi

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$py" -m venv .venv
fi
stamp=.venv/.hyperhive-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "pip install -e .[dev]"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi
