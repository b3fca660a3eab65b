"""Training images and labels straight from a MedViewer library (DICOM and PNG alike).

Each case becomes a :class:`~models.data.Record` holding its pixels as the
viewer displays them (``medviewer.services.retrieval.case_image``: modality LUT,
window, MONOCHROME1 inverted), its patient, its labels (dataset and user
labels; model labels only when asked) and its (0028,0030) Pixel Spacing.
"""

from __future__ import annotations

from pathlib import Path

from models.data import NO_FINDING, Record

LABEL_SOURCES = ("dataset", "user")


class LibraryDataError(ValueError):
    """The library cannot give training data (missing, empty, or unlabelled)."""


def read_library(library: str | Path, *, sources: tuple[str, ...] = LABEL_SOURCES,
                 require_labels: bool = True, limit: int | None = None) -> list[Record]:
    """Return one record per case of a library.

    Parameters
    ----------
    library : path
        The library file (``medviewer import`` writes it).
    sources : tuple of str
        Label sources used: ``dataset``, ``user``, ``model``.
    require_labels : bool
        Raise when no case has a label (training needs them; pretraining does not).
    limit : int, optional
        Read at most this many cases.

    Raises
    ------
    LibraryDataError
        The file is missing, holds no case, or (with ``require_labels``) no label.
    """
    from medviewer.retrieval.catalog import read_catalog
    from medviewer.services.retrieval import case_image
    from medviewer.store.library import Library

    path = Path(library)
    if not path.is_file():  # opening a missing path would create an empty library
        raise LibraryDataError(f"{path}: no such library (import images with `medviewer import` first)")
    with Library(path) as lib:
        catalog = read_catalog(lib)
        labels = {c.id: _labels(lib, c.id, sources) for c in catalog.cases}
        spacing = {r[0]: (r[1], r[2]) for r in lib.conn.execute(
            "SELECT c.id, i.spacing_row, i.spacing_col FROM cases c JOIN instances i ON i.id = c.instance_ref")}
    cases = catalog.cases[:limit] if limit else catalog.cases
    if not cases:
        raise LibraryDataError(f"{path}: the library holds no image")
    if require_labels and not any(labels[c.id] for c in cases):
        raise LibraryDataError(
            f"{path}: none of its {len(cases)} cases has a label (sources: {', '.join(sources)}); "
            "label cases in the viewer or import a label table, or pretrain without labels "
            "(python -m models.pretrain --library ...)")
    out = []
    for case in cases:
        if require_labels and not labels[case.id]:
            continue  # an unlabelled case is not known to be normal: it takes no part in training
        patient = case.patient_id or f"patient-ref-{case.patient_ref}"
        row, col = spacing.get(case.id, (None, None))
        mm = (float(row) + float(col)) / 2 if row and col else None
        out.append(Record(case.location, patient, tuple(labels[case.id]), image=case_image(case),
                          pixel_spacing=mm))
    return out


def _labels(lib, case_id: int, sources: tuple[str, ...]) -> list[str]:
    names = sorted({name for name, value, source, _ in lib.labels(case_id)
                    if source in sources and (source != "model" or value >= 0.5)})
    return [n for n in names if n != NO_FINDING] or ([NO_FINDING] if NO_FINDING in names else [])

