"""The entropic_student claims' verdicts on made-up summaries, on both sides of each threshold,
with and without the 95 % intervals the run writes (older summaries have none)."""

import pytest

from paperlab.core.claims import judge, verdicts
from paperlab.entropic_student import SYSTEM


def judged(student_acc=0.5, webp_acc=0.47, student_bytes=200.0, webp_bytes=278.0, quick=False,
           neural_acc=0.45, **intervals):
    summary = {"acc_teacher": 0.5, "acc_student_at_300_bytes": student_acc,
               "acc_webp_at_300_bytes": webp_acc, "bytes_student_at_teacher_minus_2pts":
               student_bytes, "bytes_webp_at_teacher_minus_2pts": webp_bytes,
               "acc_neural_codec_at_300_bytes": neural_acc,
               **{k: {"lo": lo, "hi": hi, "level": 0.95, "method": "made up"}
                  for k, (lo, hi) in intervals.items()}}
    return verdicts(SYSTEM.claims, summary, quick)


@pytest.mark.parametrize("student_acc, expected", [
    (0.48, "reproduced"), (0.471, "reproduced"), (0.47, "not reproduced"),
    (0.225, "not reproduced"), (None, "not measured"),
])
def test_beats_webp_at_300_bytes(student_acc, expected):
    assert judged(student_acc=student_acc)["beats_webp_at_300_bytes"] == expected


@pytest.mark.parametrize("student_acc, neural_acc, expected", [
    (0.5, 0.45, "reproduced"), (0.396, 0.538, "not reproduced"), (0.45, 0.45, "not reproduced"),
    (0.5, None, "not measured"),
])
def test_beats_neural_codec_at_300_bytes(student_acc, neural_acc, expected):
    got = judged(student_acc=student_acc, neural_acc=neural_acc)
    assert got["beats_neural_codec_at_300_bytes"] == expected


@pytest.mark.parametrize("student_bytes, webp_bytes, expected", [
    (200.0, 278.0, "reproduced"), (277.9, 278.0, "reproduced"), (278.0, 278.0, "not reproduced"),
    (400.0, 278.0, "not reproduced"), (None, 278.0, "not reproduced"),
    (200.0, None, "reproduced"),
])
def test_fewer_bytes_near_teacher(student_bytes, webp_bytes, expected):
    got = judged(student_bytes=student_bytes, webp_bytes=webp_bytes)["fewer_bytes_near_teacher"]
    assert got == expected


@pytest.mark.parametrize("claim, key", [
    ("beats_webp_at_300_bytes", "acc_student_minus_webp_at_300_bytes_ci95"),
    ("beats_neural_codec_at_300_bytes", "acc_student_minus_neural_codec_at_300_bytes_ci95"),
])
@pytest.mark.parametrize("lo, hi, expected", [
    (0.01, 0.09, "reproduced"), (-0.03, 0.09, "within noise"), (0.0, 0.0, "within noise"),
    (-0.3, -0.2, "not reproduced"),
])
def test_accuracy_at_300_bytes_judged_on_its_interval(claim, key, lo, hi, expected):
    # The point (student 0.5 vs 0.47 / 0.45) is a win in every case: the interval decides.
    assert judged(**{key: (lo, hi)})[claim] == expected


@pytest.mark.parametrize("student_bytes, lo, hi, expected", [
    (200.0, 10.0, 150.0, "reproduced"), (200.0, -40.0, 150.0, "within noise"),
    (None, -2900.0, 80.0, "within noise"),  # never in the full set, but in some resamples
    (None, 0.0, 0.0, "within noise"),  # neither ever gets there: both send the raw image
    (None, -2900.0, -2700.0, "not reproduced"), (400.0, -150.0, -100.0, "not reproduced"),
])
def test_fewer_bytes_judged_on_its_interval(student_bytes, lo, hi, expected):
    got = judged(student_bytes=student_bytes,
                 bytes_saved_vs_webp_at_teacher_minus_2pts_ci95=(lo, hi))
    assert got["fewer_bytes_near_teacher"] == expected


def test_the_intervals_are_shown_and_missing_ones_said():
    summary = {"acc_teacher": 0.5, "acc_student_at_300_bytes": 0.5,
               "acc_webp_at_300_bytes": 0.47, "acc_neural_codec_at_300_bytes": 0.45,
               "bytes_student_at_teacher_minus_2pts": None,
               "bytes_webp_at_teacher_minus_2pts": 278.0,
               "bytes_saved_vs_webp_at_teacher_minus_2pts": 278.0 - 3072,
               "bytes_saved_vs_webp_at_teacher_minus_2pts_ci95":
                   {"lo": -2900.0, "hi": -2700.0, "level": 0.95, "method": "made up"}}
    got = {j.claim.id: j for j in judge(SYSTEM.claims, summary, quick=False)}
    near = got["fewer_bytes_near_teacher"]
    assert near.interval.lo == -2900.0 and "-2794 B saved" in near.ours
    assert "no interval" in got["beats_webp_at_300_bytes"].reason


def test_missing_keys_and_the_quick_size():
    assert set(verdicts(SYSTEM.claims, {}).values()) == {"not measured"}
    assert verdicts(SYSTEM.claims, {"acc_teacher": 0.5})["fewer_bytes_near_teacher"] == (
        "not measured")
    assert set(judged(quick=True).values()) == {"direction"}
