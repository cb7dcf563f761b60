"""Disassemble single Thumb instructions for messages (capstone)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import capstone


@cache
def _thumb() -> capstone.Cs:
    import capstone  # only for a message: a clean run imports no capstone

    # V8 + MCLASS decodes every M-profile instruction, so an instruction the
    # board's core lacks can still be named.
    return capstone.Cs(
        capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS | capstone.CS_MODE_V8
    )


def describe_instruction(code: bytes, address: int) -> str:
    """``udiv r0, r0, r1`` for the first instruction in ``code``, or its raw halfwords."""
    for insn in _thumb().disasm(code, address, count=1):
        return f"{insn.mnemonic} {insn.op_str}".strip()
    halfwords = " ".join(f"{int.from_bytes(code[i : i + 2], 'little'):04x}" for i in (0, 2))
    return f".inst {halfwords}"


def mnemonic(code: bytes, address: int) -> str:
    """Just the mnemonic (``udiv``), for short messages."""
    return describe_instruction(code, address).split(" ", 1)[0]
