"""Measurements and annotations on images: geometry, statistics, library store, DICOM SR."""
