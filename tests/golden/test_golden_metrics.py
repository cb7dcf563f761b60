"""Figures the issue asks for, and the README table generated from the golden files."""

from __future__ import annotations

from golden_support import GOLDEN_ROOT

from simcore.golden import load_golden, report


def test_readme_metrics_section_matches_the_golden_files() -> None:
    assert report.readme_section(GOLDEN_ROOT / "README.md") == report.metrics_section(), (
        "golden/README.md metrics are out of date: run `nox -s golden` (or "
        "`python -m simcore.golden.generate --readme-only`)"
    )


def test_mnist_int8_accuracy_reaches_98_percent() -> None:
    g = load_golden("mnist_cnn")
    assert report.golden_metrics(g, "test", "int8").accuracy >= 0.98
    assert report.golden_metrics(g, "test", "float").accuracy >= 0.98


def test_iris_models_classify_well_above_chance() -> None:
    for name in ("iris_anne8", "iris_anne6", "iris3"):
        g = load_golden(name)
        assert report.golden_metrics(g, "all", "int8").accuracy >= 0.9, name
