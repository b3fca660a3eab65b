"""Seeded synthetic studies for tests, benchmarks, the demo library and demo models.

:func:`generate_dataset` writes chest radiographs (DX/CR, with Cardiomegaly,
Emphysema and Opacity findings and lesion masks) and CT series as real DICOM
with fake identities, plus 8-bit PNGs and ChestX-ray14-style label tables.
The renderers (:func:`render_chest`, :func:`render_ct_volume`) can also be
used directly, without writing files.
"""

from medviewer.synthetic.chest import (
    CARDIOMEGALY,
    EMPHYSEMA,
    FINDINGS,
    NO_FINDING,
    OPACITY,
    ChestAnatomy,
    ChestImage,
    render_chest,
    sample_anatomy,
    sample_findings,
)
from medviewer.synthetic.ct import CTBody, render_ct_volume, sample_body
from medviewer.synthetic.dataset import (
    CT,
    MISSING_SLICE,
    RADIOGRAPH,
    UNEVEN_SPACING,
    Manifest,
    Record,
    generate_dataset,
    write_ct_series,
)
from medviewer.synthetic.tables import DATA_ENTRY_HEADER, LABELS_COLUMNS, read_labels_csv

__all__ = [
    "CARDIOMEGALY",
    "CT",
    "CTBody",
    "ChestAnatomy",
    "ChestImage",
    "DATA_ENTRY_HEADER",
    "EMPHYSEMA",
    "FINDINGS",
    "LABELS_COLUMNS",
    "MISSING_SLICE",
    "Manifest",
    "NO_FINDING",
    "OPACITY",
    "RADIOGRAPH",
    "Record",
    "UNEVEN_SPACING",
    "generate_dataset",
    "read_labels_csv",
    "render_chest",
    "render_ct_volume",
    "sample_anatomy",
    "sample_body",
    "sample_findings",
    "write_ct_series",
]
