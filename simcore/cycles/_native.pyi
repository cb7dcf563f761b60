"""Type stub of the C extension (simcore/cycles/_native.c)."""

from typing import Any

STOP_NONE: int
STOP_BUDGET: int
STOP_OUTSIDE_CODE: int
STOP_UNKNOWN_INSTRUCTION: int
UNKNOWN_COST: int

class Accounting:
    cycles: int
    instructions: int
    stop_reason: int
    def __init__(self, refill_cycles: int, budget: int = 0) -> None: ...
    def add_range(self, start: int, prefix: Any, counts: Any, ends: Any, extra: Any) -> None: ...
    def configure_cache(
        self, start: int, end: int, size_bytes: int, ways: int, line_bytes: int, miss_cycles: int
    ) -> None: ...
    def configure_data_cache(
        self, size_bytes: int, ways: int, line_bytes: int, miss_cycles: int
    ) -> None: ...
    def configure_aliases(
        self,
        flash_alias: int,
        io_lo: int,
        io_span: int,
        io_alias: int,
        uc_reg_write: int,
        uc_mem_read: int,
        uc_mem_write: int,
        flash_copy: bytes | None,
    ) -> None: ...
    def configure_resident_pages(self, page_bytes: int, uc_ctl: int) -> None: ...
    def set_emu_stop(self, address: int) -> None: ...
    def set_fast_io_saving(self, cycles: int) -> None: ...
    def set_budget(self, instructions: int) -> None: ...
    def clear_stop(self) -> None: ...
    def state_address(self) -> int: ...
    def snapshot(self) -> dict[str, int]: ...
