"""A small labelled library and seeded neighbours for reader-study tests."""

from __future__ import annotations

import csv

import numpy as np

from helpers_dicom import write_png
from medviewer.services.importer import import_paths
from medviewer.store import Library

LABELS = ["Cardiomegaly", "Emphysema", "No Finding"]


def make_library(tmp_path):
    """A library of 30 PNG radiographs from 15 patients with labels."""
    folder = tmp_path / "png"
    folder.mkdir()
    rows = []
    for i in range(30):
        path = write_png(folder / f"img{i:03d}.png", size=16, seed=i)
        rows.append((path.name, LABELS[i % 3], f"P{i // 2:03d}"))
    table = tmp_path / "labels.csv"
    with open(table, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Image Index", "Finding Labels", "Patient ID"])
        writer.writerows(rows)
    path = tmp_path / "lib.sqlite"
    with Library(path) as lib:
        import_paths(lib, [folder], labels=table)
    return path


def brute_force_neighbours(lib: Library, seed: int = 0):
    """Nearest/farthest by cosine distance over seeded random embeddings (own patient excluded)."""
    cases = lib.cases()
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(cases), 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = {c.id: i for i, c in enumerate(cases)}

    def neighbours(case_id):
        query = cases[index[case_id]]
        distance = 1.0 - vectors @ vectors[index[case_id]]
        eligible = [i for i, c in enumerate(cases) if c.patient_id != query.patient_id]
        order = sorted(eligible, key=lambda i: distance[i])
        near = [(cases[i].id, float(distance[i])) for i in order[:5]]
        far = [(cases[i].id, float(distance[i])) for i in order[::-1][:5]]
        return near, far

    return neighbours


def make_mixed_range_library(tmp_path, count: int = 24):
    """A library of DX images from ``count // 2`` patients with two pixel ranges.

    Half are 8-bit-like (0-255, window 128/256), half 12-bit (0-4095, window
    2048/4096): linking their windows as absolute values would wash one half out.
    """
    from pydicom.uid import DigitalXRayImageStorageForPresentation

    from helpers_dicom import make_image, write

    folder = tmp_path / "dx"
    rng = np.random.default_rng(7)
    for i in range(count):
        high = 255 if i % 2 else 4095
        pixels = rng.integers(0, high + 1, (16, 16)).astype(np.uint16)
        ds = make_image(pixels, seed=i, modality="DX",
                        sop_class=DigitalXRayImageStorageForPresentation,
                        patient_id=f"MX{i // 2:03d}", patient_name=f"Mixed^Patient{i // 2}",
                        window=((high + 1) / 2, high + 1))
        write(ds, folder / f"dx{i:03d}.dcm")
    path = tmp_path / "mixed.sqlite"
    with Library(path) as lib:
        import_paths(lib, [folder])
    return path
