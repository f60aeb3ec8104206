"""The one-command demo: `tunegate demo` trains candidates, gates them, rolls them out, decides.

Modules: tickets.py, probes.py, articles.py (the shipped datasets in data/, with general.jsonl,
the good candidate's general instruction set), train_lora.py and train_embeddings.py (cached
fine-tunes), generative.py and retrieval.py (the experiments), offline.py (the offline gate),
traffic.py (the openai SDK client), users.py (the A/B stage's simulated users), stack.py
(embedded Redis and the proxy), rollout.py (shadow, A/B rounds, applied decisions), run.py
(orchestration), progress.py (bars or plain lines), summary.py and report.py (the figures and
what is printed).
"""

__all__: list[str] = []
