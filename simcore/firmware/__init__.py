"""The firmware generator: trained models to C to ELF, in f32, int8 and q16.16.

:func:`build_model_firmware` is the entry point; :mod:`.codec` converts
inputs and outputs between NumPy and the firmware's byte buffers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simcore.firmware.ir import FORMATS, FirmwareError

if TYPE_CHECKING:
    from simcore.firmware.build import FirmwareBuild, build_model_firmware, shipped_models

__all__ = ["FORMATS", "FirmwareBuild", "FirmwareError", "build_model_firmware", "shipped_models"]
_FROM_BUILD = frozenset({"FirmwareBuild", "build_model_firmware", "shipped_models"})


def __getattr__(name: str) -> Any:
    """The builder's names, imported on first use: ``simcore run`` never builds (PEP 562)."""
    if name in _FROM_BUILD:
        from simcore.firmware import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
