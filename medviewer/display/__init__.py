"""Turning modality values into what the screen shows: windows, presets, rendering."""
