"""Conduit: passive OT monitoring and IT/OT convergence toolkit."""

__version__ = "0.1.0"
