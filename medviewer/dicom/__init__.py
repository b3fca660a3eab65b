"""DICOM reading: finding files, header scans, series geometry and pixel decoding.

No Qt here; everything is plain functions and dataclasses.
"""
