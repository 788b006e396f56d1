"""Contact Center: SMS and WhatsApp in one live inbox."""

__version__ = "0.1.0"
