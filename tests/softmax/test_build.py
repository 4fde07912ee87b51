"""The C source builds with warnings as errors, and without any x86 code (as on aarch64)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from tests.softmax.reference import assert_close, reference

SOURCE = Path(__file__).parents[2] / "paperlab" / "softmax" / "csrc" / "softmax.c"
CC = shutil.which("gcc") or shutil.which("cc")


@pytest.mark.skipif(CC is None, reason="no C compiler")
def test_portable_only_build_compiles_cleanly_and_agrees(tmp_path):
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    target = tmp_path / f"_csoftmax{suffix}"
    cmd = [CC, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror",
           "-fPIC", "-shared", "-DPAPERLAB_SOFTMAX_PORTABLE_ONLY",
           f"-I{sysconfig.get_paths()['include']}", str(SOURCE), "-o", str(target), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    spec = importlib.util.spec_from_file_location("_csoftmax", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.supported_isas() == ["portable"] and module.isa() == "portable"
    x = (np.random.default_rng(0).standard_normal((3, 300)) * 10).astype(np.float32)
    for algorithm in range(4):
        y = np.empty_like(x)
        module.rows(x, y, algorithm, 0, 0, 3, False)
        assert_close(y, reference(x))
