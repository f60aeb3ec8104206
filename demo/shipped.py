"""The project-trained adapters the demo ships (demo/adapters/), checked by sha256 before use.

``scripts/build_demo_adapters.py`` trains both candidates from the project's own data with the
demo's recipe (demo/generative.py, fixed seeds) and writes each adapter's files with a manifest of
their sha256 hashes and the key of the recipe that made them. The demo loads them instead of
training (a first run then only dequantizes the base); a file whose hash differs from the
manifest is an error naming the file, and ``tunegate demo --train`` trains from scratch instead.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from demo.errors import DemoError

__all__ = [
    "ADAPTER_FILES",
    "MANIFEST",
    "SHIPPED_DIR",
    "ShippedAdapter",
    "load_shipped",
    "sha256",
    "write_shipped",
]

SHIPPED_DIR = Path(__file__).parent / "adapters"
MANIFEST = "manifest.json"
#: what PEFT needs to attach an adapter, and the record of how it was trained
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "tunegate-training.json")


@dataclass(frozen=True, slots=True)
class ShippedAdapter:
    """One shipped adapter: its folder, the recipe key it was built with, its final loss."""

    path: Path
    key: str
    steps: int
    final_loss: float | None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_shipped(
    name: str, trained: Path, key: str, steps: int, root: Path = SHIPPED_DIR
) -> dict[str, object]:
    """Copy one trained adapter's files to ``root/name`` and enter their hashes in the manifest."""
    target = root / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for file in ADAPTER_FILES:
        shutil.copyfile(trained / file, target / file)
    # the build's own cache path means nothing elsewhere; PEFT does not read it when attaching
    config_file = target / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = "SmolLM2-135M-Instruct"
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    manifest_file = root / MANIFEST
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    training = json.loads((target / "tunegate-training.json").read_text())
    entry: dict[str, object] = {
        "key": key,
        "steps": steps,
        "final_loss": training.get("final_loss"),
        "files": {file: sha256(target / file) for file in ADAPTER_FILES},
    }
    manifest.setdefault("adapters", {})[name] = entry
    manifest_file.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return entry


def load_shipped(name: str, key: str, root: Path = SHIPPED_DIR) -> ShippedAdapter | None:
    """The shipped adapter ``name`` when the manifest has it for this recipe ``key``, its files
    checked against their sha256; None when none is shipped for this recipe (train instead).
    Raises DemoError, naming the file, when a file is missing or its hash differs."""
    manifest_file = root / MANIFEST
    if not manifest_file.is_file():
        return None
    entry = json.loads(manifest_file.read_text()).get("adapters", {}).get(name)
    if entry is None or entry.get("key") != key:
        return None
    folder = root / name
    for file, expected in entry["files"].items():
        path = folder / file
        if not path.is_file():
            raise DemoError(
                f"shipped adapter file {path} is missing; rebuild it with"
                " scripts/build_demo_adapters.py, or train instead with --train"
            )
        actual = sha256(path)
        if actual != expected:
            raise DemoError(
                f"shipped adapter file {path} does not match its manifest (sha256 {actual},"
                f" expected {expected}); rebuild it with scripts/build_demo_adapters.py,"
                " or train instead with --train"
            )
    return ShippedAdapter(folder, key, int(entry["steps"]), entry.get("final_loss"))
