#!/usr/bin/env bash
# Installs what shardflow's tests need beyond Go:
#   npm   - the pinned emulators and clients in testenv/ (npm ci, only when
#           node_modules is missing or does not match package-lock.json)
#   awscli - the AWS CLI v2 (Debian package awscli, with apt-get), only when
#           no working AWS CLI v2 is found (/usr/bin/aws, `aws` on PATH);
#           prints the path of the CLI v2 on stdout
#   chromium - Debian's chromium (with apt-get) for the dashboard's browser
#           test, only when /usr/bin/chromium does not run; prints its path
#
# Usage: scripts/install-deps.sh [npm] [awscli] [chromium]    (no argument: all)
# Exits non-zero if a step fails. Safe to run repeatedly and concurrently.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
testenv="$root/testenv"

log() { printf 'install-deps: %s\n' "$*" >&2; }

# The files that must exist after a good install (the emulators' entry points).
required_files=(
  node_modules/kinesalite/cli.js
  node_modules/dynalite/cli.js
  node_modules/kinesis-local/main.js
  node_modules/kinesis-local/server.json
  node_modules/aws-kinesis-agg/package.json
  node_modules/@aws-sdk/client-kinesis/package.json
  node_modules/@smithy/node-http-handler/package.json
)
stamp_file="node_modules/.shardflow-lock.sha256"

npm_fresh() {
  local f want have
  for f in "${required_files[@]}"; do
    [[ -e "$testenv/$f" ]] || return 1
  done
  want="$(sha256sum <"$testenv/package-lock.json")"
  have="$(cat "$testenv/$stamp_file" 2>/dev/null || true)"
  [[ "$want" == "$have" ]]
}

install_npm() {
  command -v node >/dev/null || { log "node not found on PATH"; return 1; }
  command -v npm >/dev/null || { log "npm not found on PATH"; return 1; }
  if npm_fresh; then
    return 0
  fi
  # Serialise concurrent runs in the same tree: lock the lock file itself.
  local fd
  exec {fd}<"$testenv/package-lock.json"
  flock "$fd"
  if ! npm_fresh; then
    log "npm ci in testenv/ (node_modules missing or stale)"
    local start=$SECONDS
    # --ignore-scripts: npm 11 skips the leveldown/classic-level/protobufjs
    # install scripts anyway (not in allowScripts); the LevelDB packages load
    # their shipped prebuilds at run time. Ignoring them everywhere keeps the
    # result the same on every npm version.
    (cd "$testenv" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error </dev/null >&2)
    sha256sum <"$testenv/package-lock.json" >"$testenv/$stamp_file"
    log "npm ci done in $((SECONDS - start)) s"
  fi
  exec {fd}<&-
}

# Prints the path of a working AWS CLI v2, or fails.
find_aws_v2() {
  local c v
  local seen=" "
  # /usr/bin/aws (Debian's awscli) first: `aws` on PATH may be a pyenv shim of
  # a pip-installed CLI v1, or a shim with no CLI behind it.
  for c in /usr/bin/aws "$(command -v aws || true)" /usr/local/bin/aws; do
    [[ -n "$c" && -x "$c" && "$seen" != *" $c "* ]] || continue
    seen+="$c "
    # A pyenv shim may exist without a CLI behind it: run it.
    v="$(timeout 60 "$c" --version 2>&1 </dev/null || true)"
    if [[ "$v" == aws-cli/2.* ]]; then
      printf '%s\n' "$c"
      return 0
    fi
  done
  return 1
}

# Prints the path of the AWS CLI v2 on stdout, installing it if needed.
install_awscli() {
  if find_aws_v2; then
    return 0
  fi
  command -v apt-get >/dev/null || { log "no AWS CLI v2 and no apt-get to install it"; return 1; }
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || { log "not root and no sudo: cannot apt-get install awscli"; return 1; }
    if [[ -t 0 ]]; then sudo=(sudo); else sudo=(sudo -n); fi
  fi
  log "installing the AWS CLI v2 (Debian package awscli) with apt-get"
  local start=$SECONDS
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=300 -qq update </dev/null >/dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=300 -y -qq install --no-install-recommends awscli </dev/null >/dev/null
  local aws
  aws="$(find_aws_v2)" || { log "awscli installed but no working AWS CLI v2 found"; return 1; }
  log "AWS CLI v2 at $aws ($("$aws" --version 2>&1)) in $((SECONDS - start)) s"
  printf '%s\n' "$aws"
}

# Prints the path of a working Debian chromium, or fails.
find_chromium() {
  local c=/usr/bin/chromium
  [[ -x "$c" ]] && timeout 60 "$c" --version </dev/null >/dev/null 2>&1 && printf '%s\n' "$c"
}

# Prints the path of chromium on stdout, installing it if needed.
install_chromium() {
  if find_chromium; then
    return 0
  fi
  command -v apt-get >/dev/null || { log "no chromium and no apt-get to install it"; return 1; }
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || { log "not root and no sudo: cannot apt-get install chromium"; return 1; }
    if [[ -t 0 ]]; then sudo=(sudo); else sudo=(sudo -n); fi
  fi
  log "installing chromium (Debian package) with apt-get"
  local start=$SECONDS
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=300 -qq update </dev/null >/dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=300 -y -qq install --no-install-recommends chromium </dev/null >/dev/null
  local c
  c="$(find_chromium)" || { log "chromium installed but /usr/bin/chromium does not run"; return 1; }
  log "chromium at $c in $((SECONDS - start)) s"
  printf '%s\n' "$c"
}

steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(npm awscli chromium)
for s in "${steps[@]}"; do
  case "$s" in
    npm) install_npm ;;
    awscli) install_awscli ;;
    chromium) install_chromium ;;
    *) log "unknown step: $s (want npm, awscli or chromium)"; exit 2 ;;
  esac
done
