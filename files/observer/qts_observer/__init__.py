"""The QTS reference Observer: judgment-free, nothing lost, nothing changed."""

__version__ = "1.0.0"
