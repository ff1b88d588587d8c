#!/usr/bin/env bash
# Make sure a Docker engine answers; start one from Debian's packages if not.
#   docker-engine.sh start   install docker.io/docker-compose if missing, start dockerd, wait
#   docker-engine.sh stop    stop the dockerd that `start` launched (no-op otherwise)
# Idempotent: `start` on a machine whose engine already answers does nothing.
set -euo pipefail

STATE_DIR=${SM_TEMPLATE_STATE_DIR:-/tmp/sm-template-infra}
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="$STATE_DIR/dockerd.log"
WAIT_SECONDS=${DOCKER_START_TIMEOUT:-60}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

install_missing() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: ${missing[*]} missing; install with: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "installing ${missing[*]} from Debian's packages ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start() {
    if engine_answers; then
        echo "docker engine: already answering"
        return 0
    fi
    install_missing
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: no Docker engine answers and starting dockerd needs root; start it with: sudo dockerd &" >&2
        exit 1
    fi
    mkdir -p "$STATE_DIR"
    echo "docker engine: starting dockerd (log: $LOG_FILE)"
    nohup dockerd >"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    for _ in $(seq "$WAIT_SECONDS"); do
        engine_answers && { echo "docker engine: answering"; return 0; }
        kill -0 "$(cat "$PID_FILE")" 2>/dev/null || break
        sleep 1
    done
    echo "error: dockerd did not answer within ${WAIT_SECONDS}s; last lines of $LOG_FILE:" >&2
    tail -n 20 "$LOG_FILE" >&2 || true
    exit 1
}

stop() {
    [ -f "$PID_FILE" ] || { echo "docker engine: not started by us, leaving it alone"; return 0; }
    local pid
    pid=$(cat "$PID_FILE")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    fi
    rm -f "$PID_FILE"
    echo "docker engine: stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
