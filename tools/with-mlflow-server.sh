#!/usr/bin/env bash
# Runs a command with three MLflow tracking servers on 127.0.0.1, then stops them.
# Usage: tools/with-mlflow-server.sh PATH/TO/mlflow COMMAND...
# The servers start in parallel (each takes 20-35 s), each in its own
# temporary folder with a fresh SQLite store, serving artifacts itself
# (--serve-artifacts: clients upload through /api/2.0/mlflow-artifacts/…):
# - plain, on $TRAINBOX_MLFLOW_PORT (default 15123): TRAINBOX_MLFLOW_URI;
# - DagsHub's shape: mlflow's basic-auth app under the static prefix
#   /alice/repo.mlflow, on port+1: TRAINBOX_MLFLOW_AUTH_URI, its admin user
#   `admin` with the password in TRAINBOX_MLFLOW_AUTH_PASSWORD;
# - Azure ML's shape: under the prefix of an azureml:// workspace URI, on
#   port+2: TRAINBOX_MLFLOW_AZURE_URI.
# The ports must be free. MLflow spawns worker and job processes: each server
# runs in its own session and its whole group is stopped at the end, also
# when the command fails or the script is interrupted.
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
auth_port=$((port + 1))
azure_port=$((port + 2))
auth_prefix=/alice/repo.mlflow
azure_prefix=/mlflow/v2.0/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.MachineLearningServices/workspaces/ws1
auth_password=trainbox-admin-pw-1234
# A server left on a port would answer our health checks: refuse to start.
for p in "$port" "$auth_port" "$azure_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        echo "port $p on 127.0.0.1 is in use (an earlier mlflow server?); stop it or set TRAINBOX_MLFLOW_PORT to a free port (it uses that one and the next two)" >&2
        exit 1
    fi
done
root=$(mktemp -d)
pids=()
stop() {
    for pid in "${pids[@]}"; do kill -- -"$pid" 2>/dev/null || true; done
    sleep 1
    for pid in "${pids[@]}"; do kill -9 -- -"$pid" 2>/dev/null || true; done
    rm -rf "$root"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME PORT PREFIX [mlflow server options...]: in $root/NAME, in its own session.
start() {
    local name=$1 p=$2 prefix=$3
    shift 3
    local dir=$root/$name
    mkdir -p "$dir"
    (cd "$dir" && exec setsid "$mlflow" server --host 127.0.0.1 --port "$p" --workers 1 \
        --backend-store-uri "sqlite:///$dir/mlflow.db" \
        --serve-artifacts --artifacts-destination "$dir/artifacts" \
        ${prefix:+--static-prefix "$prefix"} "$@" > "$dir/server.log" 2>&1) &
    pids+=($!)
}

cat > "$root/basic_auth.ini" <<EOF
[mlflow]
default_permission = READ
database_uri = sqlite:///$root/basic_auth.db
admin_username = admin
admin_password = $auth_password
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
# Checks each password hash once a minute, not at every request (2 cores).
auth_cache_ttl_seconds = 60
EOF
started=$SECONDS
start plain "$port" ""
MLFLOW_AUTH_CONFIG_PATH=$root/basic_auth.ini MLFLOW_AUTH_ADMIN_PASSWORD=$auth_password \
    MLFLOW_FLASK_SERVER_SECRET_KEY=trainbox-test-secret \
    start auth "$auth_port" "$auth_prefix" --app-name basic-auth
start azure "$azure_port" "$azure_prefix"

# wait NAME PID URL: until URL/health answers.
wait_for() {
    local name=$1 pid=$2 url=$3
    until curl -sf "$url/health" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "the $name mlflow server did not start:" >&2
            cat "$root/$name/server.log" >&2
            exit 1
        fi
        if [ $((SECONDS - started)) -ge 240 ]; then
            echo "the $name mlflow server did not answer in 240 s:" >&2
            cat "$root/$name/server.log" >&2
            exit 1
        fi
        sleep 1
    done
    echo "mlflow server ($name) ready on $url in $((SECONDS - started)) s" >&2
}
export TRAINBOX_MLFLOW_URI="http://127.0.0.1:$port"
export TRAINBOX_MLFLOW_AUTH_URI="http://127.0.0.1:$auth_port$auth_prefix"
export TRAINBOX_MLFLOW_AUTH_PASSWORD=$auth_password
export TRAINBOX_MLFLOW_AZURE_URI="http://127.0.0.1:$azure_port$azure_prefix"
wait_for plain "${pids[0]}" "$TRAINBOX_MLFLOW_URI"
wait_for auth "${pids[1]}" "$TRAINBOX_MLFLOW_AUTH_URI"
wait_for azure "${pids[2]}" "$TRAINBOX_MLFLOW_AZURE_URI"
"$@"
