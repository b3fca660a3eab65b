"""Builders for the retrieval tests (small PNG libraries with known neighbours), and their own checks.

Images are 16x16 PNGs.  A *flat* image has one grey value, so with the raw-
pixel embedder the distance between two cases is proportional to the
difference of their values: the nearest neighbours of a case are known in
advance.  A *row* image carries a vector in its first row, which
:class:`RowEmbedder` reads back: any vector geometry (cosine, clusters)
can be planted in a real library.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from medviewer.retrieval.embedders import PixelEmbedder
from medviewer.services.importer import import_paths
from medviewer.store import Library

SIZE = 16


@dataclass(frozen=True)
class Spec:
    """One case to write: file name, grey value (or row vector), patient and labels."""

    name: str
    value: int | None = None
    patient: str = ""
    labels: str = "No Finding"
    row: tuple[int, ...] | None = None


def write_image(path: Path, spec: Spec) -> None:
    """Write a flat or row image for ``spec``."""
    if spec.row is not None:
        img = np.full((SIZE, SIZE), 128, np.uint8)
        img[0, :len(spec.row)] = np.asarray(spec.row, np.uint8)
    else:
        img = np.full((SIZE, SIZE), spec.value, np.uint8)
    Image.fromarray(img).save(path)


def make_library(folder: Path, specs: list[Spec]) -> Library:
    """Write the images and a label table into ``folder``, import them; return the open library."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = ["path,labels,patient_id"]
    for spec in specs:
        write_image(images / spec.name, spec)
        rows.append(f"{spec.name},{spec.labels},{spec.patient or spec.name}")
    (images / "labels.csv").write_text("\n".join(rows) + "\n")
    library = Library(folder / "lib.sqlite")
    import_paths(library, [images], labels=images / "labels.csv")
    return library


def add_images(library: Library, folder: Path, specs: list[Spec]) -> None:
    """Write more images (appending their labels) and import the folder again."""
    images = folder / "images"
    table = images / "labels.csv"
    lines = table.read_text().splitlines()
    for spec in specs:
        write_image(images / spec.name, spec)
        lines.append(f"{spec.name},{spec.labels},{spec.patient or spec.name}")
    table.write_text("\n".join(lines) + "\n")
    import_paths(library, [images], labels=table)


def case_id(library: Library, name: str) -> int:
    """Return the case id of the image named ``name``."""
    return next(c.id for c in library.cases() if c.location.endswith("/" + name))


class CountingEmbedder(PixelEmbedder):
    """The raw-pixel embedder (4x4), counting the images it embeds."""

    def __init__(self) -> None:
        super().__init__(size=4)
        self.embedded = 0

    def embed(self, images, state=None):
        """Embed and count."""
        self.embedded += len(images)
        return super().embed(images, state)


class RowEmbedder:
    """Reads the vector planted in an image's first row (minus 128); cosine metric."""

    def __init__(self, dim: int = 8, metric: str = "cosine") -> None:
        self.dim = dim
        self.metric = metric
        self.name = f"row{dim}"
        self.identity = hashlib.sha256(f"row-embedder:{dim}:{metric}".encode()).hexdigest()

    def embed(self, images, state=None):
        """Return the first-row vectors."""
        return np.stack([np.asarray(img, np.float32)[0, :self.dim] - 128.0 for img in images])


# Values chosen so that no two distances from any query tie (ties would make orders arbitrary).
FLAT_SPECS = [
    Spec("a.png", 8, "P1", "Cardiomegaly"),
    Spec("b.png", 20, "P1", "Cardiomegaly"),
    Spec("c.png", 30, "P2", "No Finding"),
    Spec("d.png", 42, "P3", "No Finding"),
    Spec("e.png", 50, "P4", "Cardiomegaly"),
    Spec("f.png", 60, "P5", "No Finding"),
    Spec("g.png", 70, "P6", "Effusion|Infiltration"),
    Spec("h.png", 200, "P7", "Cardiomegaly"),
    Spec("i.png", 220, "P8", "Cardiomegaly"),
    Spec("j.png", 240, "P9", "Emphysema"),
]


def test_library_builder_gives_each_case_its_patient_and_labels(tmp_path):
    from medviewer.retrieval.catalog import read_catalog

    library = make_library(tmp_path, FLAT_SPECS)
    catalog = read_catalog(library)
    by_name = {Path(c.location).name: c for c in catalog.cases}
    assert len(catalog) == len(FLAT_SPECS)
    assert by_name["a.png"].patient_id == by_name["b.png"].patient_id == "P1"
    assert by_name["a.png"].patient_ref == by_name["b.png"].patient_ref != by_name["c.png"].patient_ref
    assert by_name["g.png"].labels == ("Effusion", "Infiltration")
    # The content key follows the file: same file, same key; another file, another key.
    assert by_name["a.png"].content_key == read_catalog(library).get(by_name["a.png"].id).content_key
    assert len({c.content_key for c in catalog.cases}) == len(FLAT_SPECS)
    library.close()
