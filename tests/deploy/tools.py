"""Locate the command-line tools the deployment tests run (promtool, hadolint)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

__all__ = ["tool"]


def tool(name: str) -> str:
    """Path of ``name`` on PATH or beside the running interpreter (a venv's bin/); else fail."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise AssertionError(f"{name} is not installed (see docs/deploy.md, 'Tests')")
    return found
