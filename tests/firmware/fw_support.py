"""Types shared by the firmware tests (conftest fixtures are not importable by name)."""

from __future__ import annotations

from collections.abc import Callable

from simcore.firmware import FirmwareBuild

#: The ``fw_build`` fixture: ``fw_build(model, fmt, board, **options) -> FirmwareBuild``.
Builder = Callable[..., FirmwareBuild]
