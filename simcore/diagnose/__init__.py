"""The layout doctor: say why a firmware disagrees with its model (``simcore diagnose``)."""
