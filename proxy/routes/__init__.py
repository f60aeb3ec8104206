"""HTTP routes: the raw-ASGI /v1 hot path (openai.py) and FastAPI routers for the rest."""

__all__: list[str] = []
