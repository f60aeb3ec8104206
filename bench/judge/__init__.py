"""Judge plane benchmark: worker throughput against an instant judge, and calls saved."""

__all__: list[str] = []
