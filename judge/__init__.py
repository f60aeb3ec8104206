"""The scoring plane: workers that turn logged pairs into verdicts."""

__all__: list[str] = []
