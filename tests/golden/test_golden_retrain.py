"""Retraining the IRIS models: deterministic on one machine, the committed models elsewhere.

TensorFlow training is reproducible on one machine but not across CPUs (DESIGN.md,
golden data): different vector units round differently, and 1000 Adam steps
amplify the difference. Measured on this project's CI machine (not the one the
goldens were trained on): training twice gives identical weights; against the
committed models the weights differ by up to 1.0 (iris_anne8), 0.02 (iris_anne6)
and 0.04 (iris3), while the predicted classes agree on 99%, 100% and 100% of
the rows. So the test asserts bit-exact determinism between two trainings in
one environment, and, against the committed files, that the retrained model
classifies the dataset like the committed one except for a few borderline rows.
"""

from __future__ import annotations

import numpy as np
import pytest
from golden_support import GOLDEN_ROOT

pytestmark = pytest.mark.slow

#: Fewest rows on which a retrained model must predict the committed model's class.
#: Not 100%: on another CPU a borderline row can flip (measured 99% on iris_anne8).
MIN_CLASS_AGREEMENT = 0.95


def _classes(outputs: np.ndarray) -> np.ndarray:
    return outputs[:, 0] > 0.5 if outputs.shape[1] == 1 else outputs.argmax(axis=1)


@pytest.mark.parametrize("name", ["iris_anne8", "iris_anne6", "iris3"])
def test_retraining_iris_is_deterministic_and_matches_committed_model(name: str) -> None:
    pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    from simcore.golden import generate

    spec = generate.SPECS[name]
    data = generate.task_data(spec.task, None)
    first, _ = generate.train(spec, data)
    second, _ = generate.train(spec, data)
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        assert np.array_equal(a, b), f"{name}: two trainings in one environment differ"

    committed = keras.models.load_model(GOLDEN_ROOT / name / "model.keras")
    shapes = [w.shape for w in committed.get_weights()]
    assert [w.shape for w in first.get_weights()] == shapes, f"{name}: architecture changed"
    new = _classes(first.predict(data.inputs_float, verbose=0))
    old = _classes(committed.predict(data.inputs_float, verbose=0))
    agreement = float(np.mean(new == old))
    assert agreement >= MIN_CLASS_AGREEMENT, (
        f"{name}: retrained model predicts the committed model's class on only "
        f"{agreement:.0%} of {len(old)} rows"
    )
