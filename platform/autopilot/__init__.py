"""Autopilot: self-driving model operations on Ray.

The package is split so that the parts which decide are pure and the parts
which act are thin: ``stats`` and ``policy`` import neither Ray nor MLflow.
"""

__version__ = "0.1.0"
