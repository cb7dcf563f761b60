"""What a run produces: plain data, JSON-ready, no emulator objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from simcore.memory import MemoryReport

if TYPE_CHECKING:
    from simcore.cycles.callgraph import DetailedProfile


class StopReason(Enum):
    """Why the firmware stopped."""

    DONE = "done"  # reached the `done` symbol
    EXIT = "exit"  # semihosting SYS_EXIT / SYS_EXIT_EXTENDED
    BKPT = "bkpt"  # a breakpoint instruction other than semihosting


@dataclass(frozen=True)
class TraceRecord:
    """One ``simcore_trace`` call: a layer's output bytes during one sample."""

    sample_index: int
    layer_id: int
    data: bytes


@dataclass(frozen=True)
class LayerSpan:
    """Cycles and instructions of one layer in one sample, between two marks.

    Layer ``N``'s span runs from the previous mark (``simcore_sample_begin`` or the
    previous layer's mark) to the entry of its own mark (``simcore_layer(N)`` or
    ``simcore_trace(N, ...)``); ``layer_id`` :data:`AFTER_LAST_LAYER` is the stretch
    from the last mark to ``simcore_sample_end`` (copying the output out).
    """

    sample_index: int
    layer_id: int
    cycles: int
    instructions: int


#: ``LayerSpan.layer_id`` of the code after a sample's last layer mark.
AFTER_LAST_LAYER = -1


@dataclass
class RunResult:
    """The outcome of one run of a firmware on a board."""

    elf: str
    board: str
    core: str
    stop_reason: StopReason
    stop_pc: int
    stop_location: str
    exit_code: int | None
    stdout: str
    stderr: str
    outputs: bytes
    n_samples: int
    memory: MemoryReport
    wall_seconds: float
    traces: list[TraceRecord] = field(default_factory=list)
    instructions: int | None = None
    cycles: int | None = None
    #: Per sample, between simcore_sample_begin(i) and simcore_sample_end(i).
    sample_cycles: list[int] = field(default_factory=list)
    sample_instructions: list[int] = field(default_factory=list)
    #: Per sample and layer, from the layer marks (empty without marks or cycles).
    layer_spans: list[LayerSpan] = field(default_factory=list)
    #: Name, kind and MACs per layer id, from the build manifest when it is the ELF's.
    layer_info: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Inclusive/exclusive cycles, calls, lines and loops, when asked for (run --profile).
    profile_detail: DetailedProfile | None = None
    #: The cycle model's report: cycles, seconds_at_clock, cycle_model, cache, profile.
    cycle_report: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Every peripheral register the firmware touched in the chip's declared spaces:
    #: address, peripheral, register, reads, writes, modeled (simcore.registers).
    peripheral_registers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code in (0, None) and self.stop_reason is not StopReason.BKPT

    def layers(self) -> list[dict[str, Any]]:
        """Cycles, instructions, share and MACs per layer per inference (see
        :func:`simcore.cycles.layers.layer_table`); empty without layer marks."""
        from simcore.cycles.layers import layer_table

        return layer_table(self.layer_spans, self.layer_info) if self.layer_spans else []

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (outputs as hex, traces summarised)."""
        out: dict[str, Any] = {
            "elf": self.elf,
            "board": self.board,
            "core": self.core,
            "stop_reason": self.stop_reason.value,
            "stop_pc": f"0x{self.stop_pc:08x}",
            "stop_location": self.stop_location,
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "n_samples": self.n_samples,
            "outputs_hex": self.outputs.hex(),
            "instructions": self.instructions,
            "cycles": self.cycles,
            "sample_cycles": self.sample_cycles,
            "sample_instructions": self.sample_instructions,
            "layers": self.layers(),
            "profile_detail": None
            if self.profile_detail is None
            else self.profile_detail.as_dict(),
            "memory": self.memory.as_dict(),
            "wall_seconds": round(self.wall_seconds, 6),
            "traces": [
                {"sample": t.sample_index, "layer": t.layer_id, "bytes": len(t.data)}
                for t in self.traces
            ],
            "notes": self.notes,
            "peripheral_registers": self.peripheral_registers,
        }
        for key, value in self.cycle_report.items():
            out.setdefault(key, value)
        return out
