"""Golden data sets, reference models and golden predictions (NumPy-only API).

``list_models()`` and ``load_golden(name)`` are the entry points for the
validate path; :mod:`simcore.golden.tflite_model` parses .tflite files and
:mod:`simcore.golden.int8_ref` recomputes TFLM's int8 arithmetic in NumPy.
Only :mod:`simcore.golden.generate` imports TensorFlow.
"""

from simcore.golden.store import Golden, LayerOutput, QuantParams, list_models, load_golden

__all__ = ["Golden", "LayerOutput", "QuantParams", "list_models", "load_golden"]
