"""The entropic_student claims' verdicts on made-up summaries, on both sides of each threshold."""

import pytest

from paperlab.core.claims import verdicts
from paperlab.entropic_student import SYSTEM


def judged(student_acc=0.5, webp_acc=0.47, student_bytes=200.0, webp_bytes=278.0, quick=False,
           neural_acc=0.45):
    summary = {"acc_teacher": 0.5, "acc_student_at_300_bytes": student_acc,
               "acc_webp_at_300_bytes": webp_acc, "bytes_student_at_teacher_minus_2pts":
               student_bytes, "bytes_webp_at_teacher_minus_2pts": webp_bytes,
               "acc_neural_codec_at_300_bytes": neural_acc}
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


def test_missing_keys_and_the_quick_size():
    assert set(verdicts(SYSTEM.claims, {}).values()) == {"not measured"}
    assert verdicts(SYSTEM.claims, {"acc_teacher": 0.5})["fewer_bytes_near_teacher"] == (
        "not measured")
    assert set(judged(quick=True).values()) == {"direction"}
