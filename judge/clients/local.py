"""In-process transformers judge: greedy generation, or log-probabilities of the five labels.

torch and transformers are imported lazily (the proxy install has neither). Generation runs in
a worker thread, one call at a time, so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from judge.clients import JudgeReply
from judge.config import JudgeEndpoint
from judge.errors import PermanentJudgeError
from judge.parse import LABELS
from tunegate.lifecycle import AsyncResource

__all__ = ["LocalJudgeClient"]

_VERDICT_FIELD = '"verdict": "'


class LocalJudgeClient(AsyncResource):
    """A causal LM from ``endpoint.local_path`` (or given objects, for tests) used as the judge."""

    def __init__(
        self, endpoint: JudgeEndpoint, *, model: Any = None, tokenizer: Any = None
    ) -> None:
        self.endpoint = endpoint
        self.model = endpoint.model
        self._lm = model
        self._tokenizer = tokenizer
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> LocalJudgeClient:
        if self._lm is None or self._tokenizer is None:
            await asyncio.to_thread(self._load)
        return self

    async def aclose(self) -> None:
        self._lm = None

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = self.endpoint.local_path
        if path is None:
            raise PermanentJudgeError("endpoint: LocalJudgeClient needs a local_path")
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        self._lm = AutoModelForCausalLM.from_pretrained(path)
        self._lm.eval()

    async def complete(self, messages: list[dict[str, str]]) -> JudgeReply:
        if self._lm is None or self._tokenizer is None:
            await asyncio.to_thread(self._load)
        async with self._lock:
            return await asyncio.to_thread(self._complete, messages)

    def _prompt(self, messages: list[dict[str, str]]) -> str:
        tokenizer = self._tokenizer
        if getattr(tokenizer, "chat_template", None):
            return str(
                tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            )
        return "\n\n".join(m["content"] for m in messages) + "\n\n"

    def _complete(self, messages: list[dict[str, str]]) -> JudgeReply:
        import torch

        prompt = self._prompt(messages)
        ids = self._tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            out = self._lm.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=self.endpoint.max_tokens,
                do_sample=False,
                pad_token_id=self._tokenizer.pad_token_id or 0,
            )
        new = out[0, ids.shape[1] :]
        text = str(self._tokenizer.decode(new, skip_special_tokens=True))
        reply = JudgeReply(text=text, tokens_in=int(ids.shape[1]), tokens_out=int(new.shape[0]))
        if self.endpoint.use_logprobs:
            cut = text.find(_VERDICT_FIELD)
            prefix = text[:cut] if cut >= 0 else text + "\n"
            reply.label_logprobs = self._label_logprobs(prompt + prefix + _VERDICT_FIELD)
        return reply

    def _label_logprobs(self, prefix: str) -> dict[str, float]:
        """Sum of token log-probabilities of each label's tokens after ``prefix``."""
        import torch

        tokenizer = self._tokenizer
        head = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        result: dict[str, float] = {}
        for label in LABELS:
            tail = tokenizer(label, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([head + tail])
            with torch.inference_mode():
                logits = self._lm(ids).logits[0]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            total = sum(float(logprobs[len(head) + i - 1, token]) for i, token in enumerate(tail))
            result[label] = total if math.isfinite(total) else -1e9
        return result
