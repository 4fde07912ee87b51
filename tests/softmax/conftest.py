"""The instruction sets this CPU runs, as a fixture."""

from __future__ import annotations

import pytest

from paperlab.softmax import twopass

ISAS = twopass._C.supported_isas() if twopass._C is not None else []


@pytest.fixture(params=ISAS or ["numpy"])
def isa(request):
    """Run a test once per instruction set of the float32 kernels, restoring the default."""
    if twopass._C is None:
        yield "numpy"
        return
    previous = twopass._C.set_isa(request.param)
    yield request.param
    twopass._C.set_isa(previous)
