"""simcore: run Cortex-M0+/M33/M7 firmware without a board, with cycle and memory accounting."""

__version__ = "0.1.0"
