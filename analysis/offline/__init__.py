"""The offline gate's pure parts: spec, metrics, paired statistics, outcome, reports, hygiene."""

__all__: list[str] = []
