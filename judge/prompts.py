"""Versioned rubric templates for the pairwise judge, the choice among them, and the rendering.

Templates live in ``judge/templates/<name>.v<N>.txt``; a template's hash (of its text) is stored
in every verdict, so a changed rubric is a new judge version and never mixes with old verdicts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template as _StringTemplate

__all__ = [
    "RESPONSE_FORMAT",
    "JudgeInput",
    "Template",
    "choose_template",
    "input_from_request",
    "load_template",
    "render",
]

#: The verdict requested as a JSON schema (OpenAI ``response_format``); analysis comes first.
RESPONSE_FORMAT: dict[str, object] = {
    "type": "json_schema",
    "json_schema": {
        "name": "pairwise_verdict",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "analysis": {"type": "string"},
                "verdict": {"type": "string", "enum": ["A>>B", "A>B", "A=B", "B>A", "B>>A"]},
            },
            "required": ["analysis", "verdict"],
            "additionalProperties": False,
        },
    },
}

_VERSIONS = {"pairwise_general": 1, "pairwise_reference": 1, "multiturn": 1, "rubric": 1}


@dataclass(frozen=True, slots=True)
class Template:
    """One rubric template: its name, version, text and the short hash verdicts record."""

    name: str
    version: int
    text: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]

    @property
    def id(self) -> str:
        return f"{self.name}.v{self.version}"


@dataclass(frozen=True, slots=True)
class JudgeInput:
    """What the judge sees besides the two responses."""

    question: str
    conversation: str | None = None  # earlier turns, for multi-turn chats
    reference: str | None = None
    rubric: str | None = None


@cache
def load_template(name: str) -> Template:
    version = _VERSIONS[name]
    text = (resources.files("judge") / "templates" / f"{name}.v{version}.txt").read_text()
    return Template(name, version, text)


def choose_template(judge_input: JudgeInput) -> Template:
    """Rubric if the operator gave one, reference-guided with a reference, multi-turn, general."""
    if judge_input.rubric:
        return load_template("rubric")
    if judge_input.reference:
        return load_template("pairwise_reference")
    if judge_input.conversation:
        return load_template("multiturn")
    return load_template("pairwise_general")


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def input_from_request(
    request: dict[str, object], *, reference: str | None = None, rubric: str | None = None
) -> JudgeInput:
    """The question (last user turn) and earlier turns of a chat or completions request."""
    messages = request.get("messages")
    if isinstance(messages, list) and messages:
        turns = [m for m in messages if isinstance(m, dict)]
        last_user = max(
            (i for i, m in enumerate(turns) if m.get("role") == "user"), default=len(turns) - 1
        )
        earlier = turns[:last_user]
        conversation = "\n\n".join(
            f"{m.get('role', 'user')}: {_content_text(m.get('content'))}" for m in earlier
        )
        users_before = sum(1 for m in earlier if m.get("role") == "user")
        return JudgeInput(
            question=_content_text(turns[last_user].get("content")) if turns else "",
            conversation=conversation if users_before else None,
            reference=reference,
            rubric=rubric,
        )
    prompt = request.get("prompt")
    if isinstance(prompt, list):
        prompt = "\n".join(str(p) for p in prompt)
    return JudgeInput(question=str(prompt or ""), reference=reference, rubric=rubric)


def render(
    template: Template, judge_input: JudgeInput, response_a: str, response_b: str
) -> list[dict[str, str]]:
    """Chat messages for one judge call with ``response_a`` in slot A."""
    text = _StringTemplate(template.text).safe_substitute(
        question=judge_input.question,
        conversation=judge_input.conversation or "",
        reference=judge_input.reference or "",
        rubric=judge_input.rubric or "",
        response_a=response_a,
        response_b=response_b,
    )
    return [{"role": "user", "content": text}]
