#!/usr/bin/env bash
# Runs a command with an MLflow tracking server on 127.0.0.1, then stops it.
# Usage: tools/with-mlflow-server.sh PATH/TO/mlflow COMMAND...
# The server's URI is exported as TRAINBOX_MLFLOW_URI; its store is a fresh
# SQLite file in a temporary folder. The port is $TRAINBOX_MLFLOW_PORT
# (default 15123) and must be free. MLflow spawns worker and job processes:
# they run in their own session and the whole group is stopped at the end,
# also when the command fails or the script is interrupted.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 PATH/TO/mlflow COMMAND..." >&2
    exit 2
fi
mlflow=$1
shift
if [ ! -x "$mlflow" ]; then
    echo "$mlflow: not an executable; run \`make test-env\` (it installs mlflow in the readers environment)" >&2
    exit 1
fi
port=${TRAINBOX_MLFLOW_PORT:-15123}
# A server left on the port would answer our health checks: refuse to start.
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is in use (an earlier mlflow server?); stop it or set TRAINBOX_MLFLOW_PORT to a free port" >&2
    exit 1
fi
dir=$(mktemp -d)
setsid "$mlflow" server --host 127.0.0.1 --port "$port" --workers 1 \
    --backend-store-uri "sqlite:///$dir/mlflow.db" --default-artifact-root "$dir/artifacts" \
    > "$dir/server.log" 2>&1 &
pid=$!
stop() {
    kill -- -"$pid" 2>/dev/null || true
    sleep 1
    kill -9 -- -"$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
started=$SECONDS
until curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "the mlflow server did not start:" >&2
        cat "$dir/server.log" >&2
        exit 1
    fi
    if [ $((SECONDS - started)) -ge 180 ]; then
        echo "the mlflow server did not answer in 180 s:" >&2
        cat "$dir/server.log" >&2
        exit 1
    fi
    sleep 1
done
echo "mlflow server ready on 127.0.0.1:$port in $((SECONDS - started)) s" >&2
export TRAINBOX_MLFLOW_URI="http://127.0.0.1:$port"
"$@"
