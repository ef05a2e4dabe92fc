#!/usr/bin/env bash
# Local emulators for shardflow's tests and benchmarks.
#
# Two ways to use it:
#
#   scripts/emulators.sh CMD [ARGS...]
#       Installs the test dependencies (scripts/install-deps.sh), starts
#       kinesalite, kinesis-mock (npm kinesis-local) and dynalite on free
#       127.0.0.1 ports, exports their endpoints, runs CMD in its own process
#       group, stops everything by PID and exits with CMD's status.
#
#   source scripts/emulators.sh; sf_env_up; sf_run CMD [ARGS...]
#       The same from another bash script (scripts/test.sh does this).
#       sf_env_up installs EXIT/INT/TERM/HUP traps that stop the emulators; a
#       script that replaces those traps must call sf_env_down itself.
#
# Exported for the tests (a variable is left unset when its emulator is not
# running, and tests then skip):
#   SHARDFLOW_TEST_KINESALITE       http://127.0.0.1:PORT  kinesalite 3.3.3
#   SHARDFLOW_TEST_KINESIS_MOCK     http://127.0.0.1:PORT  kinesis-mock 0.6.2, plain HTTP
#   SHARDFLOW_TEST_KINESIS_MOCK_TLS https://127.0.0.1:PORT kinesis-mock, TLS (self-signed, HTTP/2 via ALPN)
#   SHARDFLOW_TEST_DYNALITE         http://127.0.0.1:PORT  dynalite 4.0.0
#   SHARDFLOW_TEST_AWS_CLI          path of an AWS CLI v2 (also first as `aws` on PATH)
#   SHARDFLOW_TESTENV_DIR           testenv/ (node_modules with aws-kinesis-agg, @aws-sdk/client-kinesis)
#
# With CI=true a dependency or emulator that fails to install or start fails
# the run. Without it, the script warns and goes on.
#
# Knobs: SHARDFLOW_EMULATOR_START_TIMEOUT (s, default 60),
#        SHARDFLOW_EMULATOR_DELAY_MS (CREATING/UPDATING/DELETING time, default 100),
#        SHARDFLOW_KEEP_LOGS=1 (keep the emulator logs even on success),
#        SHARDFLOW_KINESALITE_CLI / SHARDFLOW_KINESIS_MOCK_CLI / SHARDFLOW_DYNALITE_CLI
#        (another entry point for an emulator; for testing this script).

SF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SF_TESTENV="$SF_ROOT/testenv"
SF_TMP=""
SF_CHILD=""          # process group of the command run by sf_run
SF_FAILED=0          # set when something failed; keeps the logs
declare -gA SF_PID=() # emulator name -> PID (= its process group id)

sf_log() { printf 'shardflow-testenv: %s\n' "$*" >&2 || true; }

sf_ci() { [[ "${CI:-}" == true || "${CI:-}" == 1 ]]; }

# sf_problem MSG: in CI an error (returns 1), otherwise a warning (returns 0).
sf_problem() {
  SF_FAILED=1
  if sf_ci; then
    sf_log "ERROR: $* (CI=true: failing)"
    return 1
  fi
  sf_log "WARNING: $* (continuing; tests that need it will skip)"
}

# sf_free_ports N: prints N distinct TCP ports that are free on all interfaces
# (kinesalite and kinesis-mock bind all interfaces), held open together so
# that they differ, then released.
sf_free_ports() {
  node -e '
    const net = require("net");
    const n = Number(process.argv[1]), servers = [];
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      s.on("error", (e) => { console.error(e.message); process.exit(1); });
      s.listen(0, () => {
        servers.push(s);
        if (servers.length === n) {
          console.log(servers.map((x) => x.address().port).join(" "));
          servers.forEach((x) => x.close());
        }
      });
    }' "$1" </dev/null
}

# sf_http_ok PORT: true if something on 127.0.0.1:PORT answers HTTP.
sf_http_ok() {
  local fd line=""
  { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  if { printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$1" >&"$fd"; } 2>/dev/null; then
    IFS= read -r -t 2 line <&"$fd" || true
  fi
  exec {fd}>&-
  [[ "$line" == HTTP/* ]]
}

# sf_tls_ok PORT: true if a TLS handshake with 127.0.0.1:PORT completes.
# (Not a bare TCP connect: kinesis-mock then waits forever for that
# handshake and no longer exits on SIGTERM.)
sf_tls_ok() {
  timeout 10 node -e '
    const s = require("tls").connect({ host: "127.0.0.1", port: Number(process.argv[1]),
      rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] }, () => { s.end(); process.exit(0); });
    s.on("error", () => process.exit(1));' "$1" </dev/null >/dev/null 2>&1
}

# sf_alive PID: true while the process exists and is not a zombie.
sf_alive() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  st="${st##*) }"
  [[ "${st%% *}" != Z ]]
}

# sf_stop_group PGID SIGNAL GRACE_SECONDS: signal a process group, wait for it
# to go, SIGKILL what is left after the grace time, reap the leader.
sf_stop_group() {
  local pg=$1 sig=$2 grace=$3 i
  kill -"$sig" -- "-$pg" 2>/dev/null || kill -"$sig" "$pg" 2>/dev/null || true
  for ((i = 0; i < grace * 20; i++)); do
    kill -0 -- "-$pg" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 -- "-$pg" 2>/dev/null; then
    sf_log "process group $pg still alive after ${grace}s of SIG$sig: SIGKILL"
    kill -KILL -- "-$pg" 2>/dev/null || true
  fi
  wait "$pg" 2>/dev/null || true
}

# sf_launch NAME PORT [TLS_PORT]: start one emulator in its own session and
# process group, stdin from /dev/null, stdout/stderr to its log.
sf_launch() {
  local name=$1 port=$2 tls=${3:-} nm="$SF_TESTENV/node_modules" d="${SHARDFLOW_EMULATOR_DELAY_MS:-100}"
  local log="$SF_TMP/$name.log" cmd
  case "$name" in
    kinesalite)
      cmd=(env node -r "$SF_TESTENV/emulator-guard.cjs" "${SHARDFLOW_KINESALITE_CLI:-$nm/kinesalite/cli.js}" --port "$port"
        --createStreamMs "$d" --deleteStreamMs "$d" --updateStreamMs "$d" --shardLimit 1000) ;;
    dynalite)
      cmd=(env node -r "$SF_TESTENV/emulator-guard.cjs" "${SHARDFLOW_DYNALITE_CLI:-$nm/dynalite/cli.js}" --host 127.0.0.1 --port "$port"
        --createTableMs "$d" --deleteTableMs "$d" --updateTableMs "$d") ;;
    kinesis-mock)
      local v
      cmd=(env -u INITIALIZE_STREAMS -u SHOULD_PERSIST_DATA
        KINESIS_MOCK_CERT_PATH="$nm/kinesis-local/server.json"
        KINESIS_MOCK_PLAIN_PORT="$port" KINESIS_MOCK_TLS_PORT="$tls"
        AWS_REGION=us-east-1 AWS_ACCOUNT_ID=000000000000 SHARD_LIMIT=1000
        ON_DEMAND_STREAM_COUNT_LIMIT=100 LOG_LEVEL=WARN)
      for v in CREATE_STREAM DELETE_STREAM REGISTER_STREAM_CONSUMER DEREGISTER_STREAM_CONSUMER \
        START_STREAM_ENCRYPTION STOP_STREAM_ENCRYPTION MERGE_SHARDS SPLIT_SHARD \
        UPDATE_SHARD_COUNT UPDATE_STREAM_MODE; do
        cmd+=("${v}_DURATION=${d}ms")
      done
      cmd+=(node "${SHARDFLOW_KINESIS_MOCK_CLI:-$nm/kinesis-local/main.js}") ;;
  esac
  # The subshell is not a process group leader, so setsid does not fork: $!
  # is the emulator's PID and the id of its new process group. (env, the
  # first word of cmd, execs too; it undoes bash's SIGINT/SIGQUIT ignore.)
  (cd "$SF_TMP" && exec setsid "${cmd[0]}" --default-signal=INT,QUIT "${cmd[@]:1}") </dev/null >"$log" 2>&1 &
  SF_PID[$name]=$!
}

# sf_start_emulators [CMD...]: start the three in parallel, run CMD meanwhile, wait for each to answer, export the endpoints.
# Returns 1 only if sf_problem says so (CI).
sf_start_emulators() {
  local timeout="${SHARDFLOW_EMULATOR_START_TIMEOUT:-60}" name ports rc=0 t0
  local -A port=() tls=() tries=() ready=()
  local names=(kinesalite kinesis-mock dynalite)

  ports="$(sf_free_ports 4)" || { sf_problem "could not pick free ports"; return; }
  local p1 p2 p3 p4
  read -r p1 p2 p3 p4 <<<"$ports"
  port=([kinesalite]=$p1 [kinesis-mock]=$p2 [dynalite]=$p4) tls=([kinesis-mock]=$p3)
  local start_ms
  start_ms=$(date +%s%3N)
  for name in "${names[@]}"; do
    tries[$name]=1
    sf_launch "$name" "${port[$name]}" "${tls[$name]:-}"
  done
  # Work to overlap with the emulators' start-up (about 1 s).
  if [[ $# -gt 0 ]]; then "$@" || rc=1; fi

  local pending=3
  t0=$SECONDS
  while ((pending > 0)); do
    for name in "${names[@]}"; do
      [[ -z "${ready[$name]:-}" ]] || continue
      local pid=${SF_PID[$name]}
      if ! sf_alive "$pid"; then
        wait "$pid" 2>/dev/null || true
        # Lost a race for the port: try again with new ones.
        if grep -q EADDRINUSE "$SF_TMP/$name.log" 2>/dev/null && ((tries[$name] < 3)); then
          tries[$name]=$((tries[$name] + 1))
          ports="$(sf_free_ports 2)" || ports=""
          read -r p1 p2 <<<"$ports"
          port[$name]=$p1 tls[$name]=$p2
          sf_log "$name: port in use, retrying on ${port[$name]}"
          [[ -n "${port[$name]}" ]] && sf_launch "$name" "${port[$name]}" "${tls[$name]}" && continue
        fi
        sf_emulator_failed "$name" "exited before answering" || rc=1
        ready[$name]=failed; pending=$((pending - 1)); unset "SF_PID[$name]"
        continue
      fi
      if sf_http_ok "${port[$name]}" &&
        { [[ "$name" != kinesis-mock ]] || sf_tls_ok "${tls[$name]}"; }; then
        ready[$name]=ok; pending=$((pending - 1))
        sf_export "$name" "${port[$name]}" "${tls[$name]:-}"
        sf_log "$name ready on 127.0.0.1:${port[$name]} (pid $pid, $(( $(date +%s%3N) - start_ms )) ms)"
        continue
      fi
      if ((SECONDS - t0 >= timeout)); then
        sf_stop_group "$pid" TERM 5
        sf_emulator_failed "$name" "did not answer HTTP within ${timeout}s" || rc=1
        ready[$name]=failed; pending=$((pending - 1)); unset "SF_PID[$name]"
      fi
    done
    ((pending == 0)) || sleep 0.1
  done
  return "$rc"
}

sf_emulator_failed() {
  local name=$1 why=$2
  sf_log "$name $why; its log ($SF_TMP/$name.log):"
  sed 's/^/  | /' "$SF_TMP/$name.log" 2>/dev/null | tail -n 100 >&2 || true
  sf_problem "$name $why"
}

sf_export() {
  case "$1" in
    kinesalite) export SHARDFLOW_TEST_KINESALITE="http://127.0.0.1:$2" ;;
    dynalite) export SHARDFLOW_TEST_DYNALITE="http://127.0.0.1:$2" ;;
    kinesis-mock)
      export SHARDFLOW_TEST_KINESIS_MOCK="http://127.0.0.1:$2"
      export SHARDFLOW_TEST_KINESIS_MOCK_TLS="https://127.0.0.1:$3" ;;
  esac
}

# sf_env_up: install the dependencies, start the emulators, export the
# endpoints, install the traps. Returns non-zero only in CI, on failure.
sf_env_up() {
  unset SHARDFLOW_TEST_KINESALITE SHARDFLOW_TEST_KINESIS_MOCK SHARDFLOW_TEST_KINESIS_MOCK_TLS \
    SHARDFLOW_TEST_DYNALITE SHARDFLOW_TEST_AWS_CLI SHARDFLOW_TEST_CHROMIUM
  export SHARDFLOW_TESTENV_DIR="$SF_TESTENV"
  SF_TMP="$(mktemp -d "${TMPDIR:-/tmp}/shardflow-testenv.XXXXXX")"
  trap 'sf_on_exit' EXIT
  trap 'sf_on_signal INT 130' INT
  trap 'sf_on_signal TERM 143' TERM
  trap 'sf_on_signal HUP 129' HUP

  local t0=$SECONDS
  sf_chromium || return 1
  if ! "$SF_ROOT/scripts/install-deps.sh" npm; then
    sf_problem "npm ci in testenv/ failed: no emulators" || return 1
    sf_aws_cli || return 1
    return 0
  fi
  if [[ "${SF_SKIP_AWS_CLI:-}" == 1 ]]; then
    sf_start_emulators || return 1 # the demo needs no AWS CLI
  else
    sf_start_emulators sf_aws_cli || return 1
  fi
  sf_log "test environment up in $((SECONDS - t0)) s (logs in $SF_TMP)"
}

# sf_chromium: find (or install) Debian's chromium for the dashboard's
# browser test and export SHARDFLOW_TEST_CHROMIUM. SF_SKIP_CHROMIUM=1 skips it.
sf_chromium() {
  [[ "${SF_SKIP_CHROMIUM:-}" == 1 ]] && return 0
  local c
  if c="$("$SF_ROOT/scripts/install-deps.sh" chromium)" && [[ -n "$c" ]]; then
    export SHARDFLOW_TEST_CHROMIUM="$c"
  else
    sf_problem "no chromium: the dashboard's browser test cannot run"
  fi
}

# sf_aws_cli: find (or install) the AWS CLI v2, export it, put it first on
# PATH as `aws`.
sf_aws_cli() {
  local aws
  if aws="$("$SF_ROOT/scripts/install-deps.sh" awscli)" && [[ -n "$aws" ]]; then
    mkdir -p "$SF_TMP/bin"
    ln -sf "$aws" "$SF_TMP/bin/aws"
    export PATH="$SF_TMP/bin:$PATH" SHARDFLOW_TEST_AWS_CLI="$aws"
  else
    sf_problem "no AWS CLI v2"
  fi
}

# sf_env_down: stop the emulators (idempotent); remove the logs unless
# something failed or SHARDFLOW_KEEP_LOGS=1.
sf_env_down() {
  local name
  for name in "${!SF_PID[@]}"; do
    kill -TERM -- "-${SF_PID[$name]}" 2>/dev/null || true
  done
  for name in "${!SF_PID[@]}"; do
    # They keep no state worth a graceful stop (all in memory): short grace.
    sf_stop_group "${SF_PID[$name]}" TERM 3
    unset "SF_PID[$name]"
  done
  if [[ -n "$SF_TMP" && -d "$SF_TMP" ]]; then
    if [[ "$SF_FAILED" == 1 || "${SHARDFLOW_KEEP_LOGS:-}" == 1 ]]; then
      sf_log "emulator logs kept in $SF_TMP"
    else
      rm -rf "$SF_TMP"
    fi
  fi
  SF_TMP=""
}

# sf_run CMD [ARGS...]: run CMD in its own process group (so a signal to this
# script can be passed on to all of it, test binaries included) and return
# its exit status. A background command of a non-interactive bash starts with
# SIGINT and SIGQUIT ignored, and so would every process a test starts: env
# restores their default.
sf_run() {
  local rc=0
  setsid env --default-signal=INT,QUIT "$@" </dev/null &
  SF_CHILD=$!
  wait "$SF_CHILD" || rc=$?
  SF_CHILD=""
  ((rc == 0)) || SF_FAILED=1
  return "$rc"
}

sf_on_signal() {
  local sig=$1 code=$2
  # Ignore further signals while cleaning up; and SIGPIPE: with
  # `make test | tee log`, Ctrl-C also ends tee, and a write to it must not
  # end this script before the emulators are stopped.
  trap '' INT TERM HUP PIPE
  sf_log "got SIG$sig: stopping"
  # (An interruption is no failure of the emulators: their logs go.)
  # Pass the signal on (SIGHUP as SIGTERM); SIGKILL after 15 s.
  [[ "$sig" != HUP ]] || sig=TERM
  if [[ -n "$SF_CHILD" ]]; then
    sf_stop_group "$SF_CHILD" "$sig" 15
    SF_CHILD=""
  fi
  exit "$code"
}

sf_on_exit() {
  local rc=$?
  trap '' INT TERM HUP PIPE
  if [[ -n "$SF_CHILD" ]]; then
    sf_stop_group "$SF_CHILD" TERM 15
    SF_CHILD=""
  fi
  sf_env_down
  return "$rc"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  if [[ $# -eq 0 ]]; then
    echo "usage: $0 CMD [ARGS...]   (or source it: see the header)" >&2
    exit 2
  fi
  sf_env_up || exit 1
  rc=0
  sf_run "$@" || rc=$?
  exit "$rc"
fi
