"""Build the C extension of the cycle model; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "simcore.cycles._native",
            sources=["simcore/cycles/_native.c"],
            extra_compile_args=["-O2", "-std=c11"],
        )
    ]
)
