"""tunegate: prove a fine-tuned model beats its base on live traffic, then roll it out safely.

This package is the shared contract between the three planes (proxy, judge, analysis): records,
response parsing, Redis keys and client, experiment definitions, state, errors and lifecycle. It
imports no plane, ever; the composition root (``cli/``) is the only package that imports them all.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
