"""syncd: keeps online booking providers and your calendars in step."""

__version__ = "0.1.0"
