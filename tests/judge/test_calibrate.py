"""Calibration on the shared labelled sets, with baselines whose figures can be checked by hand."""

from __future__ import annotations

import json
import math

import pytest

from bench.servers.judge_double import prefer_longer, prefer_slot_a
from judge.calibrate import LabelledPair, LongerJudge, calibrate, load_golden
from judge.clients.http import HttpJudgeClient
from judge.config import JudgeEndpoint, JudgeSettings
from judge.pairwise import PairwiseJudge


async def test_longer_baseline_on_hand_made_pairs():
    pairs = [
        LabelledPair("q", "long answer", "short", 1),  # longer is right
        LabelledPair("q", "tiny", "much longer", 2),  # longer is right
        LabelledPair("q", "verbose but wrong", "right", 2),  # longer is wrong
        LabelledPair("q", "same", "size", 1),  # equal length: the baseline ties
    ]
    report = await calibrate(LongerJudge(), pairs)
    assert (report.n, report.judged, report.failed, report.ties) == (4, 4, 0, 1)
    assert report.accuracy == 0.5  # 2 of 4
    assert report.longer_baseline_accuracy == 0.5
    assert report.longer_preference == 1.0 and report.swap_consistency == 1.0
    # labels 1,2,2,1 vs predictions 1,2,1,tie: po = .5, pe = (2*2 + 2*1 + 0*1)/16 = .375
    assert report.kappa == pytest.approx((0.5 - 0.375) / (1 - 0.375))


async def test_longer_baseline_on_shared_sets_matches_a_hand_count(shared_data):
    files = [shared_data / "judge-golden" / "llmbar_Natural.json",
             shared_data / "judge-golden" / "processed_faireval.json"]  # fmt: skip
    raw = [item for f in files for item in json.loads(f.read_text())]
    pairs = load_golden(files)
    assert len(pairs) == len(raw) == 166
    longer = [1 if len(x["output_1"]) > len(x["output_2"]) else
              2 if len(x["output_2"]) > len(x["output_1"]) else 0 for x in raw]  # fmt: skip
    expected = sum(lg == x["label"] for lg, x in zip(longer, raw, strict=True)) / len(raw)
    report = await calibrate(LongerJudge(), pairs)
    assert report.accuracy == pytest.approx(expected)
    assert report.longer_baseline_accuracy == pytest.approx(expected)
    assert report.ties == longer.count(0)
    assert 0 < report.accuracy < 1 and -1 <= report.kappa <= 1


async def test_http_judges_calibrated_through_the_real_pairwise_path(
    shared_data, judge_double, judge_url
):
    pairs = load_golden([shared_data / "judge-golden" / "llmbar_Adversarial_Manual.json"])
    settings = JudgeSettings(max_retries=0)
    endpoint = JudgeEndpoint(model="double", base_url=f"{judge_url}/v1", timeout_seconds=5)
    async with HttpJudgeClient(endpoint) as client:
        judge = PairwiseJudge(client, settings)
        judge_double.policy = prefer_longer
        longer = await calibrate(judge, pairs)
        judge_double.policy = prefer_slot_a
        slot_a = await calibrate(judge, pairs)
    baseline = await calibrate(LongerJudge(), pairs)
    assert longer.accuracy == baseline.accuracy and longer.swap_consistency == 1.0
    assert len(judge_double.calls) == 4 * len(pairs)
    # always slot A: every pair a tie, never consistent, kappa 0 or undefined
    assert slot_a.ties == len(pairs) and slot_a.accuracy == 0.0 and slot_a.swap_consistency == 0
    assert math.isnan(slot_a.kappa) or slot_a.kappa == pytest.approx(0.0)
    assert slot_a.to_dict()["judge_model"] == "double"
