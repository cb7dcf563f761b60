"""Every developer and CI task of simcore, as nox sessions.

``nox -s demo`` is the main job (README), ``nox -s tests`` the default test
suite. Heavy sessions are ``default=False``. Arguments after ``--`` go to the
underlying tool.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
# libstdc++ for C++ firmware (tests/runtime skips its C++ tests without it).
TOOLCHAIN_PACKAGES = [
    "gcc-arm-none-eabi",
    "libnewlib-arm-none-eabi",
    "libstdc++-arm-none-eabi-newlib",
]


def ensure_apt(
    session: nox.Session,
    command: str,
    packages: list[str],
    *,
    required: bool,
    what: str,
    installed: bool | None = None,
) -> None:
    """Install Debian ``packages`` when ``command`` is missing (or ``installed`` is False).

    Without apt-get, or without root and sudo, a ``required`` install stops the
    session saying what to do; an optional one only warns (its tests skip).
    """
    if installed if installed is not None else shutil.which(command):
        return
    prefix: list[str] = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if not shutil.which("apt-get") or (prefix and not shutil.which("sudo")):
        message = (
            f"{command} is missing and cannot be installed with apt-get here: install "
            f"{what} ({' '.join(packages)} on Debian/Ubuntu) and put it on PATH"
        )
        if required:
            session.error(message)
        session.warn(message)
        return
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.log(f"installing {what} from Debian")
    session.run(*prefix, "apt-get", "update", "-qq", external=True, env=env)
    session.run(
        *prefix,
        "apt-get",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        *packages,
        external=True,
        env=env,
    )


def _toolchain_complete() -> bool:
    """The ARM compiler is on PATH and finds libstdc++ (a toolchain without it is topped up)."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        return False
    found = subprocess.run(
        [gcc, "-print-file-name=libstdc++.a"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return os.path.isabs(found)


def ensure_toolchain(session: nox.Session) -> None:
    """Install Debian's ARM cross toolchain (about 880 MB) when it or its libstdc++ is missing."""
    ensure_apt(
        session,
        "arm-none-eabi-gcc",
        TOOLCHAIN_PACKAGES,
        required=True,
        what="the ARM cross toolchain with newlib and libstdc++",
        installed=_toolchain_complete(),
    )


def install(session: nox.Session, *extras: str) -> None:
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", spec)


def run_pytest(session: nox.Session, *args: str) -> None:
    session.run(
        "pytest",
        "--strict-markers",
        "--strict-config",
        "-ra",
        "--durations=10",
        *args,
        *session.posargs,
    )


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the default (fast) test suite."""
    ensure_toolchain(session)
    # Renders the HTML report in tests/validate; the test skips without it.
    ensure_apt(session, "chromium", ["chromium"], required=False, what="Chromium")
    # The golden extra (TensorFlow, tflite-micro): tests/user runs `simcore golden create`
    # on a model trained in the test, as a user would; the onnx extra: tests/onnx.
    install(session, "dev", "golden", "onnx")
    run_pytest(session)


@nox.session(python=PYTHON, default=False)
def slow(session: nox.Session) -> None:
    """Run the slow-marked tests (full test sets, retraining checks)."""
    ensure_toolchain(session)
    install(session, "dev", "golden", "onnx")
    run_pytest(session, "-m", "slow")


@nox.session(python=PYTHON, default=False)
def peer(session: nox.Session) -> None:
    """Cross-check against Debian's qemu-system-arm."""
    ensure_toolchain(session)
    ensure_apt(session, "qemu-system-arm", ["qemu-system-arm"], required=True, what="QEMU for Arm")
    install(session, "dev")
    run_pytest(session, "-m", "peer")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Lint with ruff."""
    session.install("ruff==0.17.6")  # the same pin as the dev extra
    session.run("ruff", "check", "simcore", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "simcore", "tests", "noxfile.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy (strict)."""
    install(session, "dev")
    session.run("mypy")


@nox.session(python=PYTHON, default=False)
def firmware(session: nox.Session) -> None:
    """Build every shipped model x format x board into firmware_builds/out/<board>/."""
    ensure_toolchain(session)
    install(session)
    session.run("simcore", "build", "--all", *session.posargs)


@nox.session(python=PYTHON, default=False)
def demo(session: nox.Session) -> None:
    """The main job: build every model x format x board, validate it, write the reports.

    It ends with the layout doctor diagnosing a firmware built with a deliberate
    mistake (`simcore build --inject`), which exits 1 by design.

    MNIST is validated on its first 50 test images per combination here (the
    whole set runs in `nox -s bench` and `nox -s slow`); IRIS on its full test
    splits. Arguments after -- go to `simcore validate`.
    """
    ensure_toolchain(session)
    install(session)
    session.run("simcore", "boards")
    session.run("simcore", "example")
    session.run(
        "simcore",
        "validate",
        "--all",
        "--limit",
        "50",
        "--json",
        "reports/results.json",
        "--html",
        "reports/report.html",
        *session.posargs,
    )
    # The layout doctor on a firmware with a deliberate mistake: exit 1 with a diagnosis.
    session.run(
        "simcore", "build", "--model", "mnist_cnn", "--format", "int8", "--board", "rp2350",
        "--trace", "--inject", "flatten-nchw", "--out", "reports/inject",
    )  # fmt: skip
    session.run(
        "simcore",
        "diagnose",
        "reports/inject/mnist_cnn-int8-trace-inject-flatten-nchw-L5-weightschw.elf",
        "--json",
        "reports/diagnosis.json",
        success_codes=[1],
    )


@nox.session(python=PYTHON, default=False)
def golden(session: nox.Session) -> None:
    """Regenerate data sets, models and golden predictions (the only writer of golden/)."""
    install(session, "golden", "onnx")
    session.run("python", "-m", "simcore.golden.generate", *session.posargs)
    # mnist_cnn exported to ONNX through PyTorch (CPU build), and its golden.
    session.install("torch==2.13.0")
    session.run("python", "-m", "simcore.golden.onnx_export")


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Measure emulator throughput with and without accounting; prints ratios."""
    ensure_toolchain(session)
    # The start-up figure is a ratio to QEMU's process time on the same ELF.
    ensure_apt(session, "qemu-system-arm", ["qemu-system-arm"], required=False, what="QEMU for Arm")
    install(session, "distributed")
    session.run("python", "-m", "simcore.bench", *session.posargs)
    session.log("figures above are from this one run; nothing is asserted on time")


if __name__ == "__main__":  # pragma: no cover - convenience for `python noxfile.py`
    sys.exit(subprocess.call([sys.executable, "-m", "nox", *sys.argv[1:]]))
