"""The proxy benchmark: `python -m bench.proxy` (see __main__.py for the options)."""

__all__: list[str] = []
