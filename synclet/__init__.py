"""synclet: orders from shops and purchasing platforms into your own database."""

__version__ = "0.1.0"
