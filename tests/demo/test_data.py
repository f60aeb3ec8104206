"""The shipped demo datasets: reproducible from their generators, held-out splits kept apart."""

from __future__ import annotations

import json
import re
from dataclasses import asdict

from demo.articles import RETRIEVAL_FILE, articles, generate_queries, load_queries
from demo.generative import DEFAULT_PROBES, round_items, traffic_items
from demo.probes import candidate_rows, generate_probes, load_probes
from demo.rehearsal import rehearsal_candidates
from demo.retrieval import retrieval_items
from demo.tickets import PRODUCTS, TEAMS, TICKETS_FILE, generate, load_tickets, prompt_for
from demo.train_lora import GENERAL_FILE, general_examples


def test_shipped_tickets_are_the_generator_output():
    shipped = [json.loads(line) for line in TICKETS_FILE.read_text().splitlines()]
    generated = [
        {
            k: getattr(t, k)
            for k in ("id", "split", "text", "product", "error_code", "severity", "team")
        }
        for t in generate()
    ]
    assert shipped == generated


def test_tickets_are_consistent_and_heldout_is_unseen():
    train, heldout = load_tickets("train"), load_tickets("heldout")
    assert (len(train), len(heldout)) == (400, 80)
    assert not {t.text for t in train} & {t.text for t in heldout}
    for ticket in train + heldout:
        prefix, number = ticket.error_code.split("-")
        assert PRODUCTS[ticket.product] == prefix
        assert TEAMS[number[0]] == ticket.team
        assert ticket.error_code in ticket.text
        assert json.loads(ticket.answer) == ticket.triage
    # distractors: other codes or products appear in a good share of the tickets
    tricky = [
        t
        for t in heldout
        if len(re.findall(r"[A-Z]{2}-\d{3}", t.text)) > 1 or sum(p in t.text for p in PRODUCTS) > 1
    ]
    assert len(tricky) >= len(heldout) // 5


def test_prompts_are_short():
    longest = max(len(prompt_for(t)) for t in load_tickets())
    assert longest < 400


def test_probes_have_references():
    probes = load_probes()
    assert len(probes) >= DEFAULT_PROBES + 2 * (DEFAULT_PROBES // 2)  # shadow, two A/B rounds
    assert {p.kind for p in probes} == {"arithmetic", "facts", "format"}
    assert all(p.reference.strip() and p.prompt.endswith((".", "?")) for p in probes)
    assert [p.id for p in probes] == [f"probe-{i:03d}" for i in range(len(probes))]


def test_shipped_probes_are_every_generated_candidate_never_the_training_questions():
    generated = generate_probes()
    assert load_probes() == generated  # not filtered on the base's answers: unbiased net score
    assert len({p.prompt for p in generated}) == len(generated)
    trained = {prompt for prompt, _ in general_examples()}
    assert not trained & {p.prompt for p in generated}


def test_rehearsal_rows_are_never_a_probe_candidate_and_cover_every_kind():
    rows = rehearsal_candidates()
    prompts = [prompt for _, prompt, _ in rows]
    assert len(set(prompts)) == len(prompts)
    assert not set(prompts) & {prompt for _, prompt, _ in candidate_rows()}
    assert {kind for kind, _, _ in rows} == {"arithmetic", "facts", "format"}
    operations = {"+", "times", "minus", "half", "double"}
    assert {op for op in operations for p in prompts if op in p} == operations  # the whole table
    shipped = [json.loads(line) for line in GENERAL_FILE.read_text().splitlines() if line]
    rehearsed = [row for row in shipped if row["id"].startswith("rehearsal-")]
    assert rehearsed, "scripts/build_demo_general.py has been run"
    assert {row["prompt"] for row in rehearsed} <= set(prompts)
    assert [row["id"] for row in rehearsed] == [f"rehearsal-{i:03d}" for i in range(len(rehearsed))]
    assert all(row["answer"] and "\n" not in row["answer"] for row in rehearsed)


def test_traffic_mixes_tickets_and_probes_with_headers():
    items = traffic_items(6, 3)
    assert [i.category for i in items].count("tickets") == 6
    assert [i.category for i in items].count("probe") == 3
    first_half = [i.category for i in items[: len(items) // 2]]
    assert "probe" in first_half  # probes are spread through the traffic, not all at the end
    ticket = next(i for i in items if i.category == "tickets")
    headers = ticket.headers()
    assert json.loads(headers["x-tunegate-reference"])["team"] in TEAMS.values()
    assert headers["x-tunegate-category"] == "tickets"


def test_ab_rounds_get_fresh_items_half_the_shadow_stage_each():
    shadow = traffic_items(6, 4)
    rounds = round_items(6, 4, 3)
    assert [len(r) for r in rounds] == [5, 5, 5]  # 3 tickets and 2 probes each
    seen = {i.prompt for i in shadow}
    for r in rounds:
        prompts = {i.prompt for i in r}
        assert len(prompts) == 5 and not prompts & seen  # new evidence, never repeated
        seen |= prompts
        assert [i.category for i in r].count("probe") == 2


def test_shipped_retrieval_set_is_the_generator_output():
    shipped = [json.loads(line) for line in RETRIEVAL_FILE.read_text().splitlines()]
    assert shipped == [asdict(q) for q in generate_queries()]
    train, heldout = load_queries("train"), load_queries("heldout")
    assert not {q.text for q in train} & {q.text for q in heldout}
    ids = {a.id for a in articles()}
    for query in heldout:
        assert set(query.candidates) <= ids and len(set(query.candidates)) == 8


def test_retrieval_items_follow_the_convention():
    items = retrieval_items(5)
    assert len(items) == 5
    for item, query in zip(items, load_queries("heldout"), strict=False):
        assert item.labels == {"task": "retrieval"}
        assert item.inputs[0] == query.text and len(item.inputs) == 9
        assert item.reference == str(query.relevant)
        assert query.candidates[query.relevant].split("-")[0] in item.inputs[0].upper() or any(
            p.lower() in item.inputs[0].lower() for p in PRODUCTS
        )
