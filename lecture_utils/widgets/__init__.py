"""Interactive controls for the notebooks (ipywidgets + matplotlib), one module per widget.

- ``widgets.sinusoid``   ``parse_points`` and ``sinusoid_adaptation_explorer`` (notebook 01)
- ``widgets.shift``      the distribution-shift explorer and report (notebook 04)
- ``widgets.sketchpad``  draw your own characters and adapt to them (notebook 05)

ipywidgets is imported inside the builders only, so the pure helpers (e.g. ``parse_points``)
import and test without it.
"""
