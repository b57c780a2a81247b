#!/usr/bin/env bash
# The GPU check (issue 13, docs/scale.md): on a machine with an NVIDIA GPU,
# in under ten minutes, it builds the host and the demo plugins, trains the
# sort demo on CUDA in float32, bf16 and fp16, with two processes through
# torchrun (over Gloo on the one GPU, and over NCCL: on one GPU NCCL refuses
# two ranks, which is reported, not fatal; with two GPUs it runs), and on the
# CPU, then prints each run's steps/s and accuracy side by side.
#
#   tools/gpu-check.sh            (or: make gpu-check)
#
# It fails loudly when there is no NVIDIA GPU, or when trainbox cannot use
# CUDA. TRAINBOX_GPU_CHECK_ON_CPU=1 runs the same steps on the CPU (the "CUDA"
# rows with --use_cpu, no NCCL), to check the script itself on a machine
# without a GPU. STEPS (default 600) sets the length of each run.
set -euo pipefail
cd "$(dirname "$0")/.."

ON_CPU=${TRAINBOX_GPU_CHECK_ON_CPU:-0}
STEPS=${STEPS:-600}
export TRAINBOX_CACHE=${TRAINBOX_CACHE:-$HOME/.cache/trainbox}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TRAINBOX_CACHE/target}
TORCH_ENV=$TRAINBOX_CACHE/torch-env
TRAINBOX=$CARGO_TARGET_DIR/release/trainbox
started=$(date +%s)

fail() {
  echo "gpu-check: FAILED: $*" >&2
  exit 1
}

if [ "$ON_CPU" != 1 ]; then
  command -v nvidia-smi >/dev/null || fail "no nvidia-smi: this machine has no NVIDIA driver (set TRAINBOX_GPU_CHECK_ON_CPU=1 to check the script on the CPU)"
  nvidia-smi -L || fail "nvidia-smi lists no GPU"
  GPUS=$(nvidia-smi -L | grep -c '^GPU ' || true)
  [ "$GPUS" -ge 1 ] || fail "nvidia-smi lists no GPU"
else
  GPUS=0
  echo "gpu-check: TRAINBOX_GPU_CHECK_ON_CPU=1: every run on the CPU"
fi

echo "== build (make host demo-plugins)"
make host demo-plugins
[ -x "$TRAINBOX" ] || fail "$TRAINBOX was not built"
TORCHRUN=$TORCH_ENV/bin/torchrun
PY=$TORCH_ENV/bin/python3
[ -x "$TORCHRUN" ] || fail "no torchrun in $TORCH_ENV (make torch-env)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/trainbox-gpu-check.XXXXXX")
echo "gpu-check: runs in $WORK"

# The demo, the same in every run: 600 updates of 64 sequences of 16
# digits, evaluated once at the end, no checkpoint.
DEMO=(train --task sort --disable_tqdm --max_steps "$STEPS" --learning_rate 1e-3
  --per_device_train_batch_size 64 --per_device_eval_batch_size 256
  --task_option train_size=16384 --task_option eval_size=1024
  --logging_steps 100 --eval_strategy steps --eval_steps "$STEPS" --save_strategy no)

# The CUDA runs' extra flags (--use_cpu for the check on the CPU).
GPU_FLAGS=()
[ "$ON_CPU" = 1 ] && GPU_FLAGS=(--use_cpu)

ROWS=()

# row NAME STATUS OUTPUT_DIR: the table line of one run.
row() {
  local name=$1 status=$2 out=$3 figures="-"
  if [ "$status" = ok ]; then
    figures=$("$PY" - "$out/trainer_state.json" <<'EOF'
import json, sys
history = json.load(open(sys.argv[1]))["log_history"]
summary = [e for e in history if "train_steps_per_second" in e][-1]
evals = [e for e in history if "eval_accuracy" in e]
acc = evals[-1]["eval_accuracy"] if evals else float("nan")
print(f"{summary['train_steps_per_second']:>10.2f} {summary['train_samples_per_second']:>12.1f} {acc:>9.4f} {summary['train_loss']:>10.4f}")
EOF
)
  fi
  ROWS+=("$(printf '%-26s %-8s %s' "$name" "$status" "$figures")")
}

# run NAME EXPECT_DEVICE [trainbox args...]: one process.
run() {
  local name=$1 expect=$2
  shift 2
  local out=$WORK/$name
  echo "== $name"
  if ! "$TRAINBOX" "${DEMO[@]}" --output_dir "$out" "$@" 2>&1 | tee "$WORK/$name.log"; then
    fail "$name: trainbox failed (log: $WORK/$name.log)"
  fi
  if [ -n "$expect" ] && ! grep -q "training on $expect" "$WORK/$name.log"; then
    fail "$name: trainbox did not train on $expect (is libtorch_cuda linked? is the GPU visible?): $(grep -m1 'training on' "$WORK/$name.log" || echo 'no device line')"
  fi
  row "$name" ok "$out"
}

# torchrun_pair NAME BACKEND: two processes on this machine.
torchrun_pair() {
  local name=$1 backend=$2
  local out=$WORK/$name
  echo "== $name (torchrun --nproc_per_node 2, --ddp_backend $backend)"
  # A rank that cannot join or hangs in a collective fails within --ddp_timeout.
  if timeout 240 "$TORCHRUN" --standalone --nnodes 1 --nproc_per_node 2 --no-python \
    "$TRAINBOX" "${DEMO[@]}" --output_dir "$out" --ddp_backend "$backend" --ddp_timeout 90 \
    "${GPU_FLAGS[@]}" \
    >"$WORK/$name.log" 2>&1; then
    tail -n 5 "$WORK/$name.log"
    row "$name" ok "$out"
  else
    tail -n 20 "$WORK/$name.log"
    if [ "$backend" = nccl ] && [ "$GPUS" -lt 2 ]; then
      # NCCL refuses two ranks on one GPU ("Duplicate GPU detected").
      row "$name" "failed" "$out"
      ROWS[-1]+="  (expected with one GPU: NCCL refuses two ranks on one device; see $WORK/$name.log)"
    else
      fail "$name failed (log: $WORK/$name.log)"
    fi
  fi
}

CUDA=cuda:0
[ "$ON_CPU" = 1 ] && CUDA=""
run cpu-fp32 "" --use_cpu
run cuda-fp32 "$CUDA" "${GPU_FLAGS[@]}"
run cuda-bf16 "$CUDA" --bf16 "${GPU_FLAGS[@]}"
if [ "$ON_CPU" = 1 ]; then
  # --fp16 on the CPU is float32, as HF: the row checks the warning.
  run cuda-fp16 "" --fp16 "${GPU_FLAGS[@]}"
  grep -q -- "--fp16 on the CPU" "$WORK/cuda-fp16.log" || fail "no --fp16 warning on the CPU"
else
  run cuda-fp16 "$CUDA" --fp16
  run cuda-fp32-tf32 "$CUDA" --tf32
fi
torchrun_pair 2proc-gloo gloo
if [ "$ON_CPU" != 1 ]; then
  torchrun_pair 2proc-nccl nccl
fi

echo
echo "== trainbox gpu-check: $STEPS updates of 64 sort sequences each (2proc: 64 per process)"
[ "$ON_CPU" != 1 ] && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
printf '%-26s %-8s %10s %12s %9s %10s\n' run status steps/s samples/s eval_acc train_loss
for r in "${ROWS[@]}"; do echo "$r"; done
echo "gpu-check: done in $(( $(date +%s) - started )) s; logs in $WORK"
