"""Load a causal LM and its tokenizer from a GGUF file with its metadata parsed once, not thrice.

transformers (5.x) builds a GGUF model's config, its tokenizer's config and its weights through
``load_gguf_checkpoint``, and each call constructs a fresh ``gguf.GGUFReader`` on the file: three
parses of every metadata field (SmolLM2's 49,152-token vocabulary and its merges), the larger
part of a first demo run's model load. The reader is read-only (a memory map and the parsed
fields), so one instance can serve all three. transformers takes a path, not a reader, and
imports ``GGUFReader`` from the ``gguf`` module at each call; :func:`one_reader` hands it the
reader made for this file while the load runs, and the real class for any other file. This keeps
transformers' own config, tokenizer and dequantization code (rewriting them from the reader
here would copy some 200 lines of its per-architecture fix-ups); the substitution is undone on exit.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["load_gguf_lm", "one_reader"]

_lock = threading.Lock()  # one substitution at a time: loads of GGUF files are serialized


@contextmanager
def one_reader(path: Path) -> Iterator[None]:
    """While inside, every ``gguf.GGUFReader(path)`` returns one reader made on first use."""
    import gguf

    real = gguf.GGUFReader
    target = os.path.realpath(path)
    shared: list[Any] = []

    def reader(file: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Any:
        if args or kwargs or os.path.realpath(file) != target:  # another file or mode: as ever
            return real(file, *args, **kwargs)
        if not shared:
            shared.append(real(file))
        return shared[0]

    with _lock:
        gguf.GGUFReader = reader  # type: ignore[assignment,misc]  # a factory standing in
        try:
            yield
        finally:
            gguf.GGUFReader = real  # type: ignore[misc]  # the class itself again


def load_gguf_lm(directory: Path, file: str, dtype: Any) -> tuple[Any, Any]:
    """(model, tokenizer) from ``directory/file``, never touching a model hub."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with one_reader(directory / file):
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=file, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            directory, gguf_file=file, dtype=dtype, local_files_only=True
        )
    return model, tokenizer
