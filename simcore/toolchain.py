"""The ARM cross compiler: per-core flags and reproducible firmware builds.

Builds are byte-for-byte reproducible: fixed flags, sources passed in a fixed
order, ``-ffile-prefix-map`` so the firmware tree reads ``firmware_builds/``
and the output folder ``out/`` in the debug info (whether simcore is a
checkout or an installed package, see :mod:`simcore.paths`), the compiler run
in the output folder so the debug info's compilation directory is ``out``
rather than the caller's working directory, and ``SOURCE_DATE_EPOCH`` unset.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from simcore import lazylog as logging
from simcore import paths
from simcore.boards import BoardSpec
from simcore.errors import DoesNotFit, ToolchainError, UsageError
from simcore.linker import (
    LinkLayout,
    LinkOptions,
    check_placed,
    explain_overflow,
    resolve,
    write_script,
)

log = logging.getLogger(__name__)

GCC = "arm-none-eabi-gcc"
GXX = "arm-none-eabi-g++"
#: Source suffixes compiled as C++ (with GXX; libstdc++ is then linked).
CXX_SUFFIXES = frozenset({".cpp", ".cc", ".cxx", ".c++", ".C"})

#: The firmware tree: C runtime, startup, linker script templates
#: (:data:`simcore.paths.FIRMWARE_DIR`).
FIRMWARE_DIR = paths.FIRMWARE_DIR
INCLUDE_DIR = FIRMWARE_DIR / "include"
RUNTIME_DIR = FIRMWARE_DIR / "runtime"
LD_DIR = FIRMWARE_DIR / "ld"


def __getattr__(name: str) -> Path:
    """Keep ``OUT_DIR`` importable; it is :func:`simcore.paths.out_dir` at the time of access.

    It depends on the working directory and the environment, so it cannot be
    a constant fixed at import. New code calls ``paths.out_dir()``.
    """
    if name == "OUT_DIR":
        return paths.out_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Flags every build uses. -ffp-contract=off keeps float results equal to a
#: host computation without fused multiply-add (DESIGN.md "Emulation facts").
COMMON_CFLAGS: tuple[str, ...] = (
    "-mthumb",
    "-std=c11",
    "-g",
    "-Wall",
    "-Wextra",
    "-ffunction-sections",
    "-fdata-sections",
    "-ffp-contract=off",
    "-fno-common",
)
#: Flags of C++ sources, instead of ``-std=c11``: the usual embedded dialect
#: (TFLM's and the pico-sdk's defaults). ``extra_cflags`` come after them, so
#: ``-fexceptions -frtti`` turn exceptions and RTTI back on (both link and run).
COMMON_CXXFLAGS: tuple[str, ...] = (
    *(f for f in COMMON_CFLAGS if f != "-std=c11"),
    "-std=gnu++17",
    "-fno-exceptions",
    "-fno-rtti",
    "-fno-threadsafe-statics",
)
COMMON_LDFLAGS: tuple[str, ...] = (
    "--specs=nano.specs",
    "-nostartfiles",
    "-Wl,--gc-sections",
    "-Wl,--build-id=none",
)
#: The runtime every firmware links: startup, newlib glue, harness hooks.
RUNTIME_SOURCES: tuple[Path, ...] = (
    RUNTIME_DIR / "startup.c",
    RUNTIME_DIR / "syscalls.c",
    RUNTIME_DIR / "simcore_abi.c",
)


def _libstdcxx(extra_cflags: tuple[str, ...]) -> str:
    """The C++ library to link: its nano build, or the full one when exceptions are on.

    The nano libstdc++ is built without unwind tables, so a throw cannot pass
    through __cxa_throw and ends in std::terminate (measured: abort, exit code
    1). ``-l:libstdc++.a`` escapes nano.specs' ``-lstdc++`` -> ``-lstdc++_nano``.
    """
    switches = [f for f in extra_cflags if f in ("-fexceptions", "-fno-exceptions")]
    return "-l:libstdc++.a" if switches and switches[-1] == "-fexceptions" else "-lstdc++"


@dataclass(frozen=True)
class BuildResult:
    """A linked ELF with its map file and the exact command that made it."""

    elf: Path
    map_file: Path
    command: tuple[str, ...]
    compiler_version: str
    #: Commands run before ``command``: one per C++ source (C sources compile in it).
    compile_commands: tuple[tuple[str, ...], ...] = ()
    #: The linker script used: generated beside the ELF, or the caller's own.
    script: Path | None = None
    #: The placement of a generated script (None with the caller's own script).
    layout: LinkLayout | None = None


HAVE_GCC = shutil.which(GCC) is not None


def _find(tool: str, message: str, packages: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ToolchainError(
            message, hint=f"install it with 'apt-get install --no-install-recommends {packages}'"
        )
    return path


def find_gcc() -> str:
    """Return the path of arm-none-eabi-gcc or raise a ToolchainError saying how to get it."""
    return _find(
        GCC,
        f"{GCC} not found on PATH (nox sessions install it on Debian)",
        "gcc-arm-none-eabi libnewlib-arm-none-eabi",
    )


def find_gxx() -> str:
    """Return the path of arm-none-eabi-g++ or raise a ToolchainError saying how to get it."""
    return _find(
        GXX,
        f"{GXX} not found on PATH, and the firmware has C++ sources",
        "gcc-arm-none-eabi libstdc++-arm-none-eabi-newlib",
    )


def compiler_version() -> str:
    """First line of ``arm-none-eabi-gcc --version``.

    Asked once per compiler file (path, size, modification time) and process: every run
    on a board with a ROM asks it for the ROM cache's key.
    """
    gcc = find_gcc()
    try:
        st = os.stat(gcc)
    except OSError:
        return _version_of(gcc, 0, 0)
    return _version_of(gcc, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _version_of(gcc: str, size: int, mtime_ns: int) -> str:
    out = subprocess.run([gcc, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


def target_flags(board: BoardSpec) -> tuple[str, ...]:
    """The core's gcc target flags (``compiler_flags`` in data/cores.toml)."""
    return board.core.compiler_flags


def build_elf(
    sources: list[Path],
    board: BoardSpec,
    out_elf: Path,
    *,
    include_dirs: tuple[Path, ...] = (),
    defines: tuple[str, ...] = (),
    opt: str = "-O2",
    extra_cflags: tuple[str, ...] = (),
    script: Path | None = None,
    libs: tuple[str, ...] = (),
    link: LinkOptions | None = None,
) -> BuildResult:
    """Compile and link ``sources`` plus the runtime into ``out_elf`` for ``board``.

    Sources ending in .cpp/.cc/.cxx are C++: each is compiled by
    arm-none-eabi-g++ (:data:`COMMON_CXXFLAGS`), and libstdc++ is linked.

    The linker script is generated from the board's ``[link]`` defaults with
    ``link``'s overrides (:mod:`simcore.linker`) and written beside the ELF
    (``out_elf`` with the suffix ``.ld``). ``script`` replaces it with a script
    of the caller's own (e.g. for a peer emulator's memory map; ``link`` must
    then be empty); ``libs`` are linked after the objects (``("m",)`` for libm).
    The compiler runs in the output folder: relative paths in the arguments
    are made absolute first, but paths inside ``extra_cflags`` must already
    be. Raises ToolchainError carrying the compiler's own message, or for a
    region overflow, the region, the excess and the option that makes room.
    """
    if script is not None and link is not None and link.given():
        raise UsageError(
            "a linker script of your own and link options cannot be combined",
            hint="drop --ld, or set the sizes and regions in your script",
        )
    gcc = find_gcc()
    # Absolute paths, since the compiler runs in the output folder; resolved
    # there so the prefix map matches whatever path the compiler sees for it.
    out_elf = out_elf.absolute()
    out_elf.parent.mkdir(parents=True, exist_ok=True)
    workdir = out_elf.parent.resolve()
    map_file = out_elf.with_suffix(".map")
    layout = None
    if script is None:
        layout = resolve(board, link)
        script = write_script(layout, out_elf.with_suffix(".ld"))
    # The linker writes beside the targets and the results are renamed into place, so
    # a concurrent reader (another validate) never sees a half-written ELF.
    tmp_elf = out_elf.with_name(f".{out_elf.stem}.{os.getpid()}.{threading.get_ident()}.elf")
    tmp_map = tmp_elf.with_suffix(".map")
    all_sources = [Path(s).absolute() for s in (*sources, *RUNTIME_SOURCES)]
    cxx_sources = [s for s in all_sources if s.suffix in CXX_SUFFIXES]
    c_sources = [s for s in all_sources if s.suffix not in CXX_SUFFIXES]
    shared = [
        opt,
        *extra_cflags,
        f"-ffile-prefix-map={FIRMWARE_DIR}=firmware_builds",
        f"-ffile-prefix-map={workdir}=out",
        *(f"-I{Path(d).absolute()}" for d in (INCLUDE_DIR, *include_dirs)),
        *(f"-D{d}" for d in defines),
    ]
    # C++ sources are compiled on their own (no -std=c11) and linked by the gcc
    # command with libstdc++ and libm, as g++ would (nano.specs swaps in their
    # nano builds). The g++ driver cannot do the gcc command's part: it compiles
    # every .c file after the first one of a "-x c" list as C++. A program
    # without C++ is built by the one gcc command it always was.
    gxx = find_gxx() if cxx_sources else None
    objects = [
        tmp_elf.with_name(f"{tmp_elf.stem}.{i}.{s.stem}.o") for i, s in enumerate(cxx_sources)
    ]
    compile_cmds = [
        [gxx or gcc, *target_flags(board), *COMMON_CXXFLAGS, *shared, "-c", str(s), "-o", str(o)]
        for s, o in zip(cxx_sources, objects, strict=True)
    ]
    cmd = [
        gcc,
        *target_flags(board),
        *COMMON_CFLAGS,
        *shared,
        *(str(s) for s in c_sources),
        *(str(o) for o in objects),
        f"-L{LD_DIR}",
        f"-T{script.absolute()}",
        *COMMON_LDFLAGS,
        *(f"-l{lib}" for lib in libs),
        *((_libstdcxx(extra_cflags), "-lm") if gxx else ()),
        f"-Wl,-Map={tmp_map}",
        "-o",
        str(tmp_elf),
    ]
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    env["PWD"] = str(workdir)  # gcc prefers $PWD for the compilation directory when it matches
    try:
        for step in (*compile_cmds, cmd):
            log.debug("building %s in %s: %s", out_elf, workdir, " ".join(step))
            proc = subprocess.run(
                step, capture_output=True, text=True, env=env, cwd=workdir, check=False
            )
            if proc.returncode != 0:
                overflow = explain_overflow(proc.stderr, layout)
                if overflow is not None:
                    raise DoesNotFit(
                        f"building {out_elf.name} for {board.name} failed: {overflow.message}",
                        hint=overflow.hint,
                    )
                first = next(
                    (
                        ln
                        for ln in proc.stderr.splitlines()
                        if "error" in ln or "undefined reference" in ln
                    ),
                    proc.stderr.strip(),
                )
                raise ToolchainError(f"building {out_elf.name} for {board.name} failed: {first}")
        if layout is not None and layout.place:
            from simcore.elf import load_elf

            image = load_elf(tmp_elf)
            check_placed(layout, {n: (sym.address, sym.kind) for n, sym in image.symbols.items()})
        tmp_map.replace(map_file)
        tmp_elf.replace(out_elf)
    finally:
        tmp_elf.unlink(missing_ok=True)
        tmp_map.unlink(missing_ok=True)
        for obj in objects:
            obj.unlink(missing_ok=True)
    cmd = [a.replace(str(tmp_elf), str(out_elf)).replace(str(tmp_map), str(map_file)) for a in cmd]
    return BuildResult(
        elf=out_elf,
        map_file=map_file,
        command=tuple(cmd),
        compiler_version=compiler_version(),
        compile_commands=tuple(tuple(c) for c in compile_cmds),
        script=script.absolute(),
        layout=layout,
    )
