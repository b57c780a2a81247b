#!/usr/bin/env bash
# Runs a command with an MLflow tracking server on 127.0.0.1, then stops it.
# Usage: tools/with-mlflow-server.sh PATH/TO/mlflow COMMAND...
# The server's URI is exported as TRAINBOX_MLFLOW_URI; its store is a fresh
# SQLite file in a temporary folder. MLflow spawns worker and job processes:
# they run in their own session and the whole group is stopped at the end.
set -euo pipefail
mlflow=$1
shift
port=${TRAINBOX_MLFLOW_PORT:-15123}
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
for _ in $(seq 1 180); do
    if curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "the mlflow server did not start:" >&2
        cat "$dir/server.log" >&2
        exit 1
    fi
    sleep 1
done
curl -sf "http://127.0.0.1:$port/health" >/dev/null || { echo "the mlflow server did not answer in 180 s" >&2; cat "$dir/server.log" >&2; exit 1; }
export TRAINBOX_MLFLOW_URI="http://127.0.0.1:$port"
"$@"
