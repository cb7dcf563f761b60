"""Programs on newlib's rdimon semihosting report their exit status.

newlib's ``_exit`` sends SYS_EXIT_EXTENDED with the status only when the host's
``:semihosting-features`` file says SH_EXT_EXIT_EXTENDED; otherwise it sends a
plain SYS_EXIT, which on AArch32 carries no status. simcore used to refuse the
file, so ``exit(1)`` ran as exit code 0 (QEMU, which serves it, reports 1).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sim_support import BOARD_NAMES, HAVE_TOOLCHAIN

from simcore.boards import get_board
from simcore.cli import main
from simcore.engine import run_firmware
from simcore.linker import resolve, write_script
from simcore.results import StopReason
from simcore.toolchain import INCLUDE_DIR, RUNTIME_DIR, target_flags

HERE = Path(__file__).resolve().parent


def build_rdimon(out: Path, board: str, code: int, *, return_from_main: bool = False) -> Path:
    """Build rdimon_fw.c with newlib's rdimon syscalls, not simcore's syscalls.c."""
    if not HAVE_TOOLCHAIN:
        pytest.skip("arm-none-eabi-gcc missing")
    startup = (
        [HERE / "exit_main_startup.c"]
        if return_from_main
        else [RUNTIME_DIR / "startup.c", RUNTIME_DIR / "simcore_abi.c"]
    )
    elf = out / f"rdimon-{board}-{code}{'-ret' if return_from_main else ''}.elf"
    script = write_script(resolve(get_board(board)), elf.with_suffix(".ld"))
    subprocess.run(
        [
            "arm-none-eabi-gcc",
            *target_flags(get_board(board)),
            "-mthumb",
            "-O2",
            f"-DEXIT_CODE={code}",
            *(["-DRETURN_FROM_MAIN"] if return_from_main else []),
            f"-I{INCLUDE_DIR}",
            *map(str, startup),
            str(HERE / "rdimon_fw.c"),
            f"-T{script}",
            "--specs=nano.specs",
            "--specs=rdimon.specs",
            "-nostartfiles",
            "-Wl,--gc-sections",
            "-o",
            str(elf),
        ],
        check=True,
        capture_output=True,
    )
    return elf


@pytest.mark.parametrize("board", BOARD_NAMES)
def test_exit_1_is_exit_code_1(tmp_path: Path, board: str) -> None:
    result = run_firmware(build_rdimon(tmp_path, board, 1), board)
    assert (result.stop_reason, result.exit_code) == (StopReason.EXIT, 1)
    assert result.stdout == "exiting 1\n"
    assert result.stderr == "on stderr\n"  # SH_EXT_STDOUT_STDERR: ":tt" for append


@pytest.mark.parametrize("code", [0, 1, 3])
def test_return_from_main_through_exit(tmp_path: Path, code: int) -> None:
    result = run_firmware(build_rdimon(tmp_path, "rp2040", code, return_from_main=True), "rp2040")
    assert (result.stop_reason, result.exit_code) == (StopReason.EXIT, code)


@pytest.mark.parametrize("code", [0, 1])
def test_cli_exit_code(tmp_path: Path, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    elf = build_rdimon(tmp_path, "rp2040", code)
    assert main(["run", str(elf), "-b", "rp2040"]) == code
    assert f"exit code {code}" in capsys.readouterr().out
