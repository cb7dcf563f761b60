"""simcore's own bootroms for the RP2040 and RP2350: built from C on first use, mapped at 0x0.

pico-sdk programs call into the chip's mask ROM: on the RP2040 they look up the
bit and memory helpers and the soft-float/soft-double tables through the table
pointers at 0x14/0x16 and the lookup function at 0x18 (RP2040 datasheet 2.8.3);
on the RP2350 ``runtime_init`` looks up ``bootrom_state_reset`` through
``rom_table_lookup`` at 0x16 (RP2350 datasheet 5.4). No vendor binary is used:
the images are written for simcore (C and a little assembly in
``simcore/data/rom/``) and compiled with arm-none-eabi-gcc for the board's core.

Why the sources are package data (``simcore/data/rom``) rather than in
``firmware_builds/``: a pip-installed simcore has no firmware tree, yet must be
able to build the ROM the first time a program needs it.

Build: on first use, into simcore's disk cache (:func:`simcore.cache.cache_dir`,
folder ``rom``), named by the SHA-256 of the sources, the flags and the compiler's
version, so an edited source or another compiler never finds a stale image. With the
cache turned off the image is built once per process into a temporary folder. When
the toolchain is missing, the board still loads: the ROM region stays unmapped, and
only a program that reads or runs the ROM fails, with the
:class:`~simcore.errors.ToolchainError` saying what to install.

Accounting: the ROM's code is classified and timed like the firmware's (the board's
core table), under function names prefixed ``rom:``; its cycles are reported
separately and tagged approximate, since the real ROM's code differs.

Lookups that find nothing return NULL, as on the chip, and the run notes the code
(``'XY' (0x5958)``); ROM functions simcore does not carry out (flash programming,
reboot, reset to BOOTSEL) end the run with a :class:`~simcore.errors.NotModeled`
naming the function.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from simcore import cache
from simcore import lazylog as logging
from simcore.boards import BoardSpec, MemoryRegion, RegionKind
from simcore.elf import ElfImage, Symbol, load_elf
from simcore.errors import NotModeled, SimError, ToolchainError

log = logging.getLogger(__name__)

#: Prefix of the ROM's function names in profiles and messages (``rom:rom_fadd``).
SYMBOL_PREFIX = "rom:"
#: The ROM's hook simcore watches by address (rom_common.h): a lookup found nothing.
MISSING_HOOK = "simcore_rom_missing"
_COMMON = ("rom_common.c",)
_HEADERS = ("rom_common.h", "rom.ld")
_CFLAGS = (
    "-Os",
    "-ffreestanding",
    "-fno-builtin",
    "-fno-ipa-icf",  # one function per table entry, each with its own name
    "-fno-strict-aliasing",  # the word loops of rom_memcpy/rom_memset
    "-fno-tree-loop-distribute-patterns",  # no memset/memcpy calls in rom_memset/memcpy
    "-ffunction-sections",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-nostdlib",
    "-nostartfiles",
    "-Wl,--gc-sections",
    "-Wl,--build-id=none",
)


@dataclass(frozen=True)
class RomRecipe:
    """How one ROM image is built: its sources, target flags and libraries."""

    name: str
    sources: tuple[str, ...]
    target: tuple[str, ...]
    libs: tuple[str, ...]


#: The ROM images a board region can name (``image = "rp2040"``; boards.ROM_IMAGES).
RECIPES = {
    "rp2040": RomRecipe(
        "rp2040",
        ("rp2040_rom.S", "rp2040_rom.c", "rp2040_float.c", *_COMMON),
        ("-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"),
        # newlib's libm kernels (sin, exp, ...) and libgcc's soft float
        ("-lm", "-lgcc"),
    ),
    "rp2350": RomRecipe(
        "rp2350",
        ("rp2350_rom.S", "rp2350_rom.c", *_COMMON),
        ("-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=soft"),
        ("-lgcc",),
    ),
}


def source_dir() -> Path:
    """The folder of the ROM sources (package data)."""
    return Path(str(resources.files("simcore") / "data" / "rom"))


@dataclass(frozen=True)
class RomImage:
    """A built ROM: its ELF and the bytes to map at the region's start."""

    name: str
    elf: ElfImage
    contents: bytes

    def hook(self, name: str) -> int | None:
        """The address of the ROM's function ``name`` (unprefixed), if it has one."""
        sym = self.elf.symbol(name)
        return sym.address if sym is not None else None


@dataclass(frozen=True)
class RomMapping:
    """A board's ROM region and its image, or why there is none (the toolchain is missing)."""

    region: MemoryRegion
    image: RomImage | None
    error: SimError | None = None


def code_name(code: int) -> str:
    """``'XY' (0x5958)``: a lookup code as pico-sdk writes it (ROM_TABLE_CODE('X', 'Y'))."""
    chars = bytes([code & 0xFF, (code >> 8) & 0xFF])
    if code >> 16 == 0 and all(0x20 < c < 0x7F for c in chars):
        return f"'{chars.decode()}' (0x{code:04x})"
    return f"0x{code:08x}"


#: The ROM functions simcore does not carry out: symbol -> (name in the datasheet, code).
#: simcore stops the run at their first instruction, where LR still holds the caller.
UNSUPPORTED = {
    "rom_flash_range_erase": ("flash_range_erase", 0x4552),  # 'RE'
    "rom_flash_range_program": ("flash_range_program", 0x5052),  # 'RP'
    "rom_reset_usb_boot": ("reset_usb_boot", 0x4255),  # 'UB'
    "rom_reboot": ("reboot", 0x4252),  # 'RB'
    "rom_flash_op": ("flash_op", 0x4F46),  # 'FO'
    "rom_otp_access": ("otp_access", 0x414F),  # 'OA'
}


def missing_note(board: str, code: int) -> str:
    """The run's note for a lookup that found nothing."""
    return (
        f"the firmware looked up ROM entry {code_name(code)}, which simcore's {board} ROM "
        "does not have: the lookup returned NULL (as the real ROM does for an unknown code)"
    )


def unsupported_error(symbol: str, where: str, pc: int, location: str) -> NotModeled:
    """The error that ends a run calling a ROM function simcore does not carry out."""
    what, code = UNSUPPORTED[symbol]
    if what in ("reset_usb_boot", "reboot"):
        hint = "the firmware asked to reboot: end the program by returning from main instead"
    else:
        hint = "simcore does not model flash programming or OTP: run code that does not write them"
    return NotModeled(
        f"the firmware called the ROM's {what} ({code_name(code)}) from {where}: "
        "simcore's ROM does not carry it out",
        pc=pc,
        location=location,
        hint=hint,
    )


def _digest(recipe: RomRecipe, compiler: str) -> str:
    folder = source_dir()
    parts: list[bytes | str] = [recipe.name, compiler, *recipe.target, *_CFLAGS, *recipe.libs]
    for name in (*recipe.sources, *_HEADERS):
        try:
            parts += [name, (folder / name).read_bytes()]
        except OSError as exc:
            raise ToolchainError(
                f"simcore's {recipe.name} ROM source {name} cannot be read: "
                f"{exc.strerror or type(exc).__name__}",
                hint="reinstall simcore (the ROM sources are package data in simcore/data/rom)",
            ) from None
    return cache.digest("rom", parts)


#: ELF bytes built by this process, by key: another cache folder (tests give each their
#: own) gets a copy instead of a second compilation.
_BUILT: dict[str, bytes] = {}


@functools.cache
def _scratch_dir() -> Path:
    """A per-process folder for ROM images when the disk cache is off."""
    return Path(tempfile.mkdtemp(prefix="simcore-rom-"))


def _compile(recipe: RomRecipe, gcc: str, out: Path) -> None:
    folder = source_dir()
    cmd = [
        gcc,
        *recipe.target,
        *_CFLAGS,
        f"-ffile-prefix-map={folder}=simcore/data/rom",
        f"-I{folder}",
        f"-T{folder / 'rom.ld'}",
        *(str(folder / s) for s in recipe.sources),
        *recipe.libs,
        "-o",
        str(out),
    ]
    import subprocess  # here, not at import: only building the ROM runs the compiler

    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=out.parent)
    if proc.returncode != 0:
        raise ToolchainError(
            f"building simcore's {recipe.name} ROM failed: "
            + (proc.stderr.strip().splitlines() or ["no message"])[-1],
            hint="check the arm-none-eabi toolchain (gcc-arm-none-eabi, libnewlib-arm-none-eabi)",
        )


#: simcore.toolchain.GCC, named here so that a warm run does not import that module.
_GCC = "arm-none-eabi-gcc"
_COMPILER_KIND = "compiler"


def _compiler() -> tuple[str, str]:
    """The compiler's path and the first line of its ``--version``.

    The line is kept in the disk cache under the compiler's path and the resolved
    binary's path, size, inode and modification time (reinstalling or upgrading it
    changes them): asking gcc and importing simcore.toolchain cost a warm RP2040 run
    about 30 ms. A wrapper script that starts another compiler is not looked into.
    """
    gcc = shutil.which(_GCC)
    if gcc is None:
        from simcore.toolchain import find_gcc

        gcc = find_gcc()  # raises the ToolchainError that says how to install it
    real = os.path.realpath(gcc)
    try:
        st = os.stat(real)
    except OSError:
        from simcore.toolchain import compiler_version

        return gcc, compiler_version()
    key = cache.digest(_COMPILER_KIND, [gcc, real, f"{st.st_size} {st.st_ino} {st.st_mtime_ns}"])
    found = cache.load(_COMPILER_KIND, key)
    if found is not None and isinstance(found[1], str):
        return gcc, found[1]
    from simcore.toolchain import compiler_version

    version = compiler_version()
    cache.store(_COMPILER_KIND, key, {}, version)
    return gcc, version


def build(name: str) -> Path:
    """The ROM image ``name``'s ELF, built now unless the cache has it.

    Raises ToolchainError when arm-none-eabi-gcc is missing or the build fails.
    """
    recipe = RECIPES[name]
    gcc, version = _compiler()
    key = _digest(recipe, version)
    folder = cache.cache_dir()
    folder = (folder / "rom") if folder is not None else _scratch_dir()
    path = folder / f"{name}-{key[:24]}.elf"
    if path.is_file():
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}-"))
    except OSError as exc:  # an unwritable cache: build in the scratch folder
        log.debug("cannot write the ROM cache %s: %s", folder, exc)
        folder = _scratch_dir()
        path = folder / path.name
        work = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}-"))
    try:
        out = work / path.name
        if key in _BUILT:
            out.write_bytes(_BUILT[key])
        else:
            _compile(recipe, gcc, out)
            _BUILT[key] = out.read_bytes()
        os.replace(out, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("built simcore's %s ROM: %s", name, path)
    return path


@functools.cache
def _load(name: str, path: Path) -> RomImage:
    elf = load_elf(path)
    for section in (".data", ".bss"):
        if elf.section_sizes.get(section, (0, 0, False, False))[1]:
            raise ToolchainError(
                f"simcore's {name} ROM has a {section} section: the ROM has no RAM of its own",
                hint="keep the ROM's C free of writable static data",
            )
    end = max(seg.load_address + len(seg.data) for seg in elf.segments)
    contents = bytearray(end)
    for seg in elf.segments:
        contents[seg.load_address : seg.load_address + len(seg.data)] = seg.data
    return RomImage(name, elf, bytes(contents))


def load(name: str) -> RomImage:
    """The ROM image ``name`` (one of :data:`RECIPES`), built on first use."""
    return _load(name, build(name))


def mappings(board: BoardSpec) -> list[RomMapping]:
    """The board's ROM regions with their images; a missing toolchain is kept, not raised."""
    out = []
    for region in board.regions(RegionKind.ROM):
        if region.image is None:
            continue  # a board file always names it; a BoardSpec made in code may not
        try:
            image = load(region.image)
        except ToolchainError as exc:
            error = ToolchainError(
                f"the program reads or runs {board.name}'s bootrom (region {region.name} at "
                f"0x{region.start:08x}), which simcore builds from its own sources with "
                f"arm-none-eabi-gcc: {exc.message}",
                hint=exc.hint,
            )
            out.append(RomMapping(region, None, error))
            continue
        if len(image.contents) > region.size_bytes:
            raise ToolchainError(
                f"simcore's {region.image} ROM ({len(image.contents):,} bytes) does not fit "
                f"{board.name}'s region {region.name} ({region.size_bytes:,} bytes)",
                hint="enlarge the region in the board file",
            )
        out.append(RomMapping(region, image))
    return out


def error_at(roms: list[RomMapping], address: int) -> SimError | None:
    """Why ``address`` is unmapped, if it is in a ROM region that could not be built."""
    for m in roms:
        if m.error is not None and m.region.contains(address):
            return m.error
    return None


def with_roms(image: ElfImage, roms: list[RomMapping]) -> ElfImage:
    """``image`` with the ROMs' code, segments and functions added (names prefixed ``rom:``).

    The cycle model classifies and profiles the ROM's code too, and the call graph
    reads its instructions; memory reports count flash and RAM regions only, so the
    ROM's segments add nothing to the firmware's figures.
    """
    built = [m.image for m in roms if m.image is not None]
    if not built:
        return image
    symbols: dict[str, Symbol] = {}
    sections = list(image.code_sections)
    segments = list(image.segments)
    for rom in built:
        sections += rom.elf.code_sections
        segments += rom.elf.segments
        for name, sym in rom.elf.symbols.items():
            if sym.kind == "func":
                symbols[SYMBOL_PREFIX + name] = replace(sym, name=SYMBOL_PREFIX + name)
    symbols.update(image.symbols)
    return replace(image, code_sections=tuple(sections), segments=tuple(segments), symbols=symbols)


def rom_ranges(roms: list[RomMapping]) -> tuple[tuple[int, int], ...]:
    """The ``[start, end)`` ranges of the mapped ROM images."""
    return tuple(
        (m.region.start, m.region.start + len(m.image.contents))
        for m in roms
        if m.image is not None
    )
