"""The data plane: an OpenAI-compatible proxy that serves one arm and mirrors the other."""

__all__: list[str] = []
