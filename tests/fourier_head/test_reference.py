"""Reading the authors' toy-script outputs (issue #20): the KLs reported beside ours."""

import json

import pytest

from paperlab.fourier_head.experiment import reference_script_kl


def _write(root, sub, payload):
    path = root / "toy-example-synthetic" / "output" / "gmm2" / sub / "model_metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))


def test_reads_each_head_per_seed_and_tolerates_a_missing_run(tmp_path):
    _write(tmp_path, "linear/0.0/0", {"1": {"KL divergence": 0.25, "MSE": 0.1},
                                      "42": {"KL divergence": 0.2, "MSE": 0.1}})
    out = reference_script_kl(tmp_path)
    assert out == {"linear": {"1": 0.25, "42": 0.2}, "fourier_n12": {}}


@pytest.mark.parametrize("payload", ["not json", json.dumps([1, 2]),
                                     json.dumps({"1": {"MSE": 0.1}}),
                                     json.dumps({"1": {"KL divergence": "nan"}})])
def test_malformed_files_raise_value_error_naming_the_file(tmp_path, payload):
    _write(tmp_path, "fourier/1e-06/12", payload)
    with pytest.raises(ValueError, match="model_metrics.json"):
        reference_script_kl(tmp_path)
