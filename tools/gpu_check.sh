#!/usr/bin/env bash
# The GPU check (issue 14): on a machine with an NVIDIA GPU and a CUDA driver, build the
# CUDA backend beside the CPU one, run the device check (`masteer check`: CUDA vs CPU
# logits, steering, capture, gate, reply), the golden logit and hook tests, then the speed example
# on CUDA. Prints prefill / decode / batched figures. About 8 minutes on 16 cores with
# a warm toolchain (most of it the first build of burn's CUDA crates).
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || {
  echo "no NVIDIA driver: this script needs a CUDA machine" >&2
  exit 1
}
export MASTEER_CACHE_DIR="${MASTEER_CACHE_DIR:-$PWD/target/masteer-cache}"
python3 -m pip --version >/dev/null 2>&1 || python3 -m ensurepip --upgrade
cargo --version
echo "== CUDA and CPU backends compiled together: the device check"
cargo run --release -p masteer-cli --features cuda -- check --device cuda || true
echo "== golden logits and hooks, CPU"
cargo test --release -p masteer-models --test golden --test hooks 2>&1 | grep -E "test result|panicked|FAILED" || true
echo "== speed on CUDA"
cargo run --release -p masteer-examples --no-default-features --features cuda --example speed
