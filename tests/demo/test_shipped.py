"""The shipped adapters: the manifest's sha256 hashes are checked before the demo uses a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from demo.errors import DemoError
from demo.generative import candidate_configs
from demo.shipped import ADAPTER_FILES, SHIPPED_DIR, load_shipped, sha256, write_shipped
from demo.train_lora import _key, general_examples, ticket_examples


def _trained(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/tmp/x"}))
    (folder / "adapter_model.safetensors").write_bytes(b"weights" * 100)
    (folder / "tunegate-training.json").write_text(json.dumps({"final_loss": 0.25}))
    return folder


def test_a_written_adapter_loads_back_with_its_key(tmp_path):
    root = tmp_path / "adapters"
    entry = write_shipped("mixed", _trained(tmp_path / "trained"), "k1", 40, root)
    assert entry["final_loss"] == 0.25
    config = json.loads((root / "mixed" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "SmolLM2-135M-Instruct"  # no build path
    shipped = load_shipped("mixed", "k1", root)
    assert shipped is not None and shipped.path == root / "mixed" and shipped.steps == 40
    assert load_shipped("mixed", "another recipe", root) is None  # then the demo trains
    assert load_shipped("tickets", "k1", root) is None


def test_a_changed_file_is_an_error_naming_it(tmp_path):
    root = tmp_path / "adapters"
    write_shipped("tickets", _trained(tmp_path / "trained"), "k1", 40, root)
    weights = root / "tickets" / "adapter_model.safetensors"
    weights.write_bytes(b"tampered")
    with pytest.raises(DemoError, match=r"adapter_model\.safetensors does not match") as info:
        load_shipped("tickets", "k1", root)
    assert "--train" in str(info.value)
    weights.unlink()
    with pytest.raises(DemoError, match=r"adapter_model\.safetensors is missing"):
        load_shipped("tickets", "k1", root)


def test_the_shipped_adapters_match_the_demo_recipe_and_their_hashes():
    """What the repository ships is what the demo's recipe builds, and small."""
    manifest = json.loads((SHIPPED_DIR / "manifest.json").read_text())
    from demo.train_lora import _gguf

    tasks, general = ticket_examples(), general_examples()
    for name, config in candidate_configs().items():
        pools = [tasks, general] if config.general_share > 0 else [tasks]
        key = _key(pools, config, _gguf())
        assert manifest["adapters"][name]["key"] == key
        shipped = load_shipped(name, key)
        assert shipped is not None
        for file in ADAPTER_FILES:
            assert sha256(shipped.path / file) == manifest["adapters"][name]["files"][file]
        assert (shipped.path / "adapter_model.safetensors").stat().st_size < 4_000_000
