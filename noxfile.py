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
TOOLCHAIN_PACKAGES = ["gcc-arm-none-eabi", "libnewlib-arm-none-eabi"]


def ensure_toolchain(session: nox.Session) -> None:
    """Install Debian's ARM cross toolchain when ``arm-none-eabi-gcc`` is missing."""
    if shutil.which("arm-none-eabi-gcc"):
        return
    if not shutil.which("apt-get"):
        session.error(
            "arm-none-eabi-gcc is missing and this is not a Debian/Ubuntu system: install "
            "an Arm GNU toolchain with newlib (arm-none-eabi-gcc) and put it on PATH"
        )
    prefix: list[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            session.error(
                "arm-none-eabi-gcc is missing and apt-get needs root: run "
                f"'apt-get install --no-install-recommends {' '.join(TOOLCHAIN_PACKAGES)}' as root"
            )
        prefix = ["sudo", "-n"]
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.log("installing the ARM toolchain from Debian (about 880 MB)")
    session.run(*prefix, "apt-get", "update", "-qq", external=True, env=env)
    session.run(
        *prefix,
        "apt-get",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        *TOOLCHAIN_PACKAGES,
        external=True,
        env=env,
    )


def ensure_apt(session: nox.Session, package: str) -> None:
    """Install a Debian package whose command is missing, or say why not (tests then skip)."""
    if shutil.which(package):
        return
    prefix: list[str] = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if not shutil.which("apt-get") or (prefix and not shutil.which("sudo")):
        session.warn(f"{package} is missing and cannot be installed with apt-get here")
        return
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run(*prefix, "apt-get", "update", "-qq", external=True, env=env)
    session.run(
        *prefix,
        "apt-get",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        package,
        external=True,
        env=env,
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
    ensure_apt(session, "chromium")  # renders the HTML report in tests/validate
    install(session, "dev")
    run_pytest(session)


@nox.session(python=PYTHON, default=False)
def slow(session: nox.Session) -> None:
    """Run the slow-marked tests (full test sets, retraining checks)."""
    ensure_toolchain(session)
    install(session, "dev", "golden")
    run_pytest(session, "-m", "slow")


@nox.session(python=PYTHON, default=False)
def peer(session: nox.Session) -> None:
    """Cross-check against Debian's qemu-system-arm."""
    ensure_toolchain(session)
    if not shutil.which("qemu-system-arm"):
        session.run(
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "qemu-system-arm",
            external=True,
        )
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


@nox.session(python=PYTHON, default=False)
def golden(session: nox.Session) -> None:
    """Regenerate data sets, models and golden predictions (the only writer of golden/)."""
    install(session, "golden")
    session.run("python", "-m", "simcore.golden.generate", *session.posargs)


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Measure emulator throughput with and without accounting; prints ratios."""
    ensure_toolchain(session)
    install(session)
    session.run("python", "-m", "simcore.bench", *session.posargs)
    session.log("figures above are from this one run; nothing is asserted on time")


if __name__ == "__main__":  # pragma: no cover - convenience for `python noxfile.py`
    sys.exit(subprocess.call([sys.executable, "-m", "nox", *sys.argv[1:]]))
