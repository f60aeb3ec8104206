"""tunegate: prove a fine-tuned model beats its base on live traffic, then roll it out safely.

This package is the shared contract between the three planes (proxy, judge, analysis):
records, Redis key names, settings, errors and the `tunegate` CLI. It imports no plane
at module level except the plane's settings section models (pure pydantic).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
