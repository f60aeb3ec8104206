"""Statistics and decisions: evidence from Redis in, a Decision with its reasons out."""

__all__: list[str] = []
