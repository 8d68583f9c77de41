# Supervision of the local cluster's processes (sourced by scripts/dev): each service runs as a child
# of this shell; one that exits is reported with the last lines of its log and started again after a
# capped, jittered backoff (1 s doubling to 30 s, back to 1 s once it has stayed up a minute), while
# the others keep running. The current pid of each service is in SV_PID_DIR/<name>. Written for
# `set -euo pipefail` (the caller's): a service that has exited or cannot be signalled is an expected
# case, handled where it happens.
# shellcheck shell=bash

SV_MIN_DELAY_MS=1000
SV_MAX_DELAY_MS=30000
SV_STABLE_S=60
# How long a stopping service may take (a cell drains its tasks for up to 60 s) before SIGKILL.
SV_STOP_TIMEOUT_S=75
SV_PID_DIR=""

SV_NAMES=()
declare -A SV_CMD=() SV_LOG=() SV_PID=() SV_STARTED_MS=() SV_DELAY_MS=() SV_DUE_MS=() SV_RUNS=()

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

# restart_delay PREVIOUS_MS UPTIME_S: the backoff before the next start of a service that ran for
# UPTIME_S seconds after a backoff of PREVIOUS_MS (0: it never had to be restarted). Pure.
restart_delay() {
  local previous=$1 uptime=$2
  if ((previous <= 0 || uptime >= SV_STABLE_S)); then
    echo "$SV_MIN_DELAY_MS"
  elif ((previous * 2 >= SV_MAX_DELAY_MS)); then
    echo "$SV_MAX_DELAY_MS"
  else
    echo $((previous * 2))
  fi
}

# jittered MS: a wait between three quarters of MS and MS, so that services that fail together do
# not all come back in the same instant.
jittered() { echo $(($1 - (RANDOM * 32768 + RANDOM) % ($1 / 4 + 1))); }

# exit_reason STATUS: how a process ended, from its wait status.
exit_reason() {
  local status=$1 sig
  if ((status > 128)) && sig=$(kill -l $((status - 128)) 2>/dev/null); then
    echo "killed by SIG$sig"
  else
    echo "exit status $status"
  fi
}

# sv_add NAME LOGFILE COMMAND…: registers a service (not started yet).
sv_add() {
  local name=$1 logfile=$2
  shift 2
  SV_NAMES+=("$name")
  SV_CMD[$name]=$(printf '%q ' "$@")
  SV_LOG[$name]=$logfile
  SV_DELAY_MS[$name]=0
  SV_DUE_MS[$name]=""
  SV_RUNS[$name]=0
}

# sv_launch NAME: starts the service now and records its pid.
sv_launch() {
  local name=$1
  local -a cmd
  eval "cmd=(${SV_CMD[$name]})"
  "${cmd[@]}" >>"${SV_LOG[$name]}" 2>&1 </dev/null &
  SV_PID[$name]=$!
  SV_STARTED_MS[$name]=$(now_ms)
  SV_DUE_MS[$name]=""
  SV_RUNS[$name]=$((SV_RUNS[$name] + 1))
  [[ -z $SV_PID_DIR ]] || echo "${SV_PID[$name]}" >"$SV_PID_DIR/$name"
}

sv_running() { [[ -n ${SV_PID[$1]:-} ]] && kill -0 "${SV_PID[$1]}" 2>/dev/null; }

# sv_poll: one pass: reports each service that exited and schedules its restart; starts those due.
sv_poll() {
  local name now status uptime wait_ms
  now=$(now_ms)
  for name in "${SV_NAMES[@]}"; do
    if [[ -n ${SV_DUE_MS[$name]} ]]; then
      if ((now >= SV_DUE_MS[$name])); then
        sv_launch "$name"
        log "$name started again (pid ${SV_PID[$name]}, start $((SV_RUNS[$name])))"
      fi
      continue
    fi
    [[ -n ${SV_PID[$name]:-} ]] || continue
    sv_running "$name" && continue
    # (wait returns the service's own status, which is what is reported.)
    status=0
    wait "${SV_PID[$name]}" 2>/dev/null || status=$?
    uptime=$(((now - SV_STARTED_MS[$name]) / 1000))
    SV_DELAY_MS[$name]=$(restart_delay "${SV_DELAY_MS[$name]}" "$uptime")
    wait_ms=$(jittered "${SV_DELAY_MS[$name]}")
    SV_DUE_MS[$name]=$((now + wait_ms))
    log "$name (pid ${SV_PID[$name]}) exited after ${uptime} s ($(exit_reason "$status")); last lines of ${SV_LOG[$name]}:"
    tail -n 15 "${SV_LOG[$name]}" | sed 's/^/    /' >&2
    log "restarting $name in $((wait_ms / 1000)).$((wait_ms % 1000 / 100)) s"
    SV_PID[$name]=""
    [[ -z $SV_PID_DIR ]] || rm -f "$SV_PID_DIR/$name"
  done
}

# sv_stop_all: SIGTERM to every running service, the last started first, each given
# SV_STOP_TIMEOUT_S to exit before SIGKILL. Services waiting for a restart are not started again.
sv_stop_all() {
  local i name pid t
  for ((i = ${#SV_NAMES[@]} - 1; i >= 0; i--)); do
    name=${SV_NAMES[i]}
    SV_DUE_MS[$name]=""
    pid=${SV_PID[$name]:-}
    [[ -n $pid ]] || continue
    if kill -TERM "$pid" 2>/dev/null; then
      for ((t = 0; t < SV_STOP_TIMEOUT_S * 5; t++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
      done
      if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) did not stop within $SV_STOP_TIMEOUT_S s; killing it"
        # (It may have exited in the meantime.)
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    # (A service stopped by a signal makes wait fail: expected here.)
    wait "$pid" 2>/dev/null || true
    SV_PID[$name]=""
    [[ -z $SV_PID_DIR ]] || rm -f "$SV_PID_DIR/$name"
  done
}
