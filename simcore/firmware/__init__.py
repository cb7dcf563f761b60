"""The firmware generator: trained models to C to ELF, in f32, int8 and q16.16.

:func:`build_model_firmware` is the entry point; :mod:`.codec` converts
inputs and outputs between NumPy and the firmware's byte buffers.
"""

from simcore.firmware.build import FirmwareBuild, build_model_firmware, shipped_models
from simcore.firmware.ir import FORMATS, FirmwareError

__all__ = ["FORMATS", "FirmwareBuild", "FirmwareError", "build_model_firmware", "shipped_models"]
