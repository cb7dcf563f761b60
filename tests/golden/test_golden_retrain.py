"""Retraining the IRIS models in this environment gives the committed weights exactly."""

from __future__ import annotations

import numpy as np
import pytest
from golden_support import GOLDEN_ROOT

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["iris_anne8", "iris_anne6", "iris3"])
def test_retraining_iris_gives_identical_weights(name: str) -> None:
    pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    from simcore.golden import generate

    spec = generate.SPECS[name]
    model, _ = generate.train(spec, generate.task_data(spec.task, None))
    committed = keras.models.load_model(GOLDEN_ROOT / name / "model.keras")
    new, old = model.get_weights(), committed.get_weights()
    assert len(new) == len(old)
    for a, b in zip(new, old, strict=True):
        assert a.shape == b.shape and np.array_equal(a, b), f"{name}: weights differ"
