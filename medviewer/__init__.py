"""MedViewer: a desktop radiology study tool."""

__version__ = "0.1.0"
