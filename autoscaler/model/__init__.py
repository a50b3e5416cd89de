"""Frozen value types, Kubernetes quantities and the scheduling-constraint algebra.

Pure: no I/O, no clock, no randomness. Everything above imports from here; this package imports
nothing from the rest of ``autoscaler``.
"""
