"""The one-command demo: `tunegate demo` trains a candidate, mirrors traffic, judges and decides.

Modules: tickets.py, probes.py, articles.py (the shipped datasets in data/), train_lora.py and
train_embeddings.py (cached fine-tunes), generative.py and retrieval.py (the two experiments),
traffic.py (the openai SDK client), stack.py (embedded Redis and the proxy), run.py
(orchestration), summary.py and report.py (the figures and what is printed).
"""

__all__: list[str] = []
