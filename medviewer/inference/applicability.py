"""Does a model fit this image?  A header check against the bundle's domain, in words.

The bundle's ``metadata.json`` declares the images it was trained on
(``domain``, filled by ``models.export`` from the training data)::

    "domain": {"modalities": ["CR", "DX"], "body_parts": ["CHEST"], "views": ["PA", "AP"],
               "photometric": ["MONOCHROME1", "MONOCHROME2"], "bits_stored": [8],
               "min_size": 72, "formats": ["png"], "description": "frontal chest radiographs"}

:func:`image_facts` reads what the header says about an image, from
(0008,0060) Modality, (0018,0015) Body Part Examined, (0018,5101) View
Position, (0028,0004) Photometric Interpretation, (0028,0101) Bits Stored,
(0028,0010) Rows, (0028,0011) Columns and (0028,0008) Number of Frames (a
PNG/JPEG has only its size and colour); :func:`check_applicability` compares
the two and returns ``applicable`` with its reasons, e.g. "this model was
trained on frontal chest radiographs; this image is a head CT".  The
data-driven check beside it is :mod:`medviewer.inference.ood`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Modalities that are the same kind of image for a model: CR, DX and PNG/JPEG radiographs together.
MODALITY_FAMILIES = {
    "radiograph": ("CR", "DX", "RG", "DR", "PX", "RAD"),
    "CT": ("CT",),
    "MR": ("MR",),
    "ultrasound": ("US", "IVUS"),
    "nuclear medicine": ("NM", "PT"),
    "mammogram": ("MG",),
    "angiogram": ("XA", "RF"),
    "secondary capture": ("OT", "SC"),
}
MODALITY_WORDS = {"CR": "radiograph", "DX": "radiograph", "RG": "radiograph", "DR": "radiograph",
                  "CT": "CT", "MR": "MR", "US": "ultrasound image", "NM": "nuclear medicine image",
                  "PT": "PET image", "MG": "mammogram", "XA": "angiogram", "RF": "fluoroscopy image",
                  "OT": "secondary capture", "SC": "secondary capture", "SEG": "segmentation",
                  "SR": "structured report", "RTSTRUCT": "RT structure set", "RTPLAN": "RT plan"}
FRONTAL_VIEWS = ("PA", "AP")
# Words in (0008,1030) Study / (0008,103E) Series Description that name a body part.
BODY_PART_WORDS = {
    "HEAD": ("HEAD", "BRAIN", "SKULL", "CRANI"), "CHEST": ("CHEST", "THORAX", "LUNG", "THX", "CXR"),
    "ABDOMEN": ("ABDOMEN", "ABD", "LIVER", "PELVIS"), "KNEE": ("KNEE",), "FOOT": ("FOOT", "ANKLE"),
    "HAND": ("HAND", "WRIST"), "SPINE": ("SPINE", "LUMBAR", "CERVICAL"), "BREAST": ("BREAST", "MAMMO"),
}
BODY_PART_ALIASES = {"THORAX": "CHEST", "LUNG": "CHEST", "BRAIN": "HEAD", "SKULL": "HEAD",
                     "ABD": "ABDOMEN", "CSPINE": "SPINE", "LSPINE": "SPINE", "TSPINE": "SPINE"}
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")


def modality_family(modality: str | None) -> str | None:
    """Return the family of a (0008,0060) Modality value; PNG/JPEG count as radiographs.

    ``None`` (no header) gives ``radiograph``: the app reads PNG/JPEG only as radiographs.
    """
    if not modality or str(modality).upper() in ("PNG", "JPEG", "JPG"):
        return "radiograph"
    code = str(modality).upper()
    for family, codes in MODALITY_FAMILIES.items():
        if code in codes:
            return family
    return code


@dataclass(frozen=True)
class ImageFacts:
    """What an image's header says about it (None where it says nothing).

    Attributes
    ----------
    source : str
        ``dicom``, ``png`` or ``jpeg`` (``array`` for pixels without a file).
    modality, body_part, view, photometric : str or None
    bits_stored : int or None
    rows, columns : int or None
    frames : int
    colour : bool
        The pixels hold colour (RGB/YBR, or a PNG whose channels differ).
    """

    source: str
    modality: str | None = None
    body_part: str | None = None
    view: str | None = None
    photometric: str | None = None
    bits_stored: int | None = None
    rows: int | None = None
    columns: int | None = None
    frames: int = 1
    colour: bool = False

    def describe(self) -> str:
        """Return the image in a few words ("a head CT", "a colour PNG", "a lateral chest radiograph")."""
        words = []
        if self.colour:
            words.append("colour")
        if self.view and self.view.upper() in ("LL", "RL", "LAT", "LATERAL"):
            words.append("lateral")
        if self.body_part:
            words.append(self.body_part.lower())
        if self.modality:
            words.append(MODALITY_WORDS.get(self.modality.upper(), f"{self.modality} image"))
        elif self.source in ("png", "jpeg"):
            words.append(f"{self.source.upper()} image")
        else:
            words.append("image")
        text = " ".join(words)
        article = "an" if text[:1].lower() in "aeiou" else "a"
        return f"{article} {text}"

    def to_dict(self) -> dict[str, Any]:
        """Return the facts as JSON-friendly data."""
        return {k: getattr(self, k) for k in ("source", "modality", "body_part", "view", "photometric",
                                              "bits_stored", "rows", "columns", "frames", "colour")}


def _body_part(ds) -> str | None:
    value = str(getattr(ds, "BodyPartExamined", "") or "").strip().upper()
    if value:
        return BODY_PART_ALIASES.get(value, value)
    text = " ".join(str(getattr(ds, k, "") or "") for k in
                    ("StudyDescription", "SeriesDescription", "ProtocolName")).upper()
    for part, words in BODY_PART_WORDS.items():
        if any(w in text for w in words):
            return part
    return None


def facts_from_dataset(ds) -> ImageFacts:
    """Return the facts of a pydicom dataset (pixel data not needed)."""
    photometric = str(getattr(ds, "PhotometricInterpretation", "") or "").upper() or None
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)

    def number(name):
        try:
            value = getattr(ds, name, None)
            return int(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            return None

    return ImageFacts(
        source="dicom",
        modality=str(getattr(ds, "Modality", "") or "").upper() or None,
        body_part=_body_part(ds),
        view=str(getattr(ds, "ViewPosition", "") or "").upper() or None,
        photometric=photometric,
        bits_stored=number("BitsStored"),
        rows=number("Rows"), columns=number("Columns"),
        frames=number("NumberOfFrames") or 1,
        colour=samples > 1 or bool(photometric and photometric.startswith(("RGB", "YBR", "PALETTE"))),
    )


def image_facts(path: str | Path | Any) -> ImageFacts:
    """Return what the header of an image file (or a :class:`~medviewer.dicom.sources.FileRef`) says.

    Raises
    ------
    ImageReadError
        The file is neither a readable DICOM nor a PNG/JPEG.
    """
    from medviewer.dicom.sources import FileRef
    from medviewer.errors import ImageReadError, NotDicomError

    ref = path if isinstance(path, FileRef) else FileRef.for_path(path)
    if ref.suffix in RASTER_SUFFIXES:
        from PIL import Image

        try:
            with ref.open() as fh, Image.open(fh) as img:
                img.load()
                colour = False
                if img.mode not in ("L", "I", "I;16", "F", "1"):
                    import numpy as np

                    rgb = np.asarray(img.convert("RGB"))
                    colour = not (np.array_equal(rgb[..., 0], rgb[..., 1])
                                  and np.array_equal(rgb[..., 1], rgb[..., 2]))
                bits = 16 if img.mode.startswith("I") else 8
                return ImageFacts(source="jpeg" if ref.suffix != ".png" else "png", rows=img.height,
                                  columns=img.width, bits_stored=bits, colour=colour,
                                  photometric="RGB" if colour else "MONOCHROME2")
        except OSError as exc:
            raise ImageReadError(f"image cannot be decoded ({exc})", path=ref.display) from exc
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        with ref.open() as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(fh, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, AttributeError) as exc:
        raise NotDicomError("the file is neither DICOM nor PNG/JPEG", path=ref.display,
                            hint="open a DICOM, PNG or JPEG file") from exc
    return facts_from_dataset(ds)


def facts_from_pixels(image, source: str = "array") -> ImageFacts:
    """Return the facts an image array alone gives (size and colour), for pixels without a header."""
    import numpy as np

    arr = np.asarray(image)
    colour = arr.ndim == 3 and arr.shape[-1] >= 3 and not (
        np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2]))
    return ImageFacts(source=source, rows=int(arr.shape[0]), columns=int(arr.shape[1]), colour=bool(colour),
                      photometric="RGB" if colour else "MONOCHROME2")


@dataclass(frozen=True)
class Domain:
    """The images a model was trained on (``metadata.json`` ``domain``); empty fields are not checked."""

    modalities: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    views: tuple[str, ...] = ()
    photometric: tuple[str, ...] = ()
    bits_stored: tuple[int, ...] = ()
    min_size: int | None = None
    formats: tuple[str, ...] = ()
    description: str = ""

    @classmethod
    def from_metadata(cls, meta: dict[str, Any] | None) -> Domain | None:
        """Return the bundle's domain, or None for a bundle that declares none (exported before it existed)."""
        block = (meta or {}).get("domain")
        if not isinstance(block, dict):
            return None

        def strings(key):
            return tuple(str(v).upper() for v in block.get(key) or ())

        return cls(modalities=strings("modalities"), body_parts=strings("body_parts"), views=strings("views"),
                   photometric=strings("photometric"),
                   bits_stored=tuple(int(v) for v in block.get("bits_stored") or ()),
                   min_size=int(block["min_size"]) if block.get("min_size") else None,
                   formats=tuple(str(v).lower() for v in block.get("formats") or ()),
                   description=str(block.get("description") or ""))

    def describe(self) -> str:
        """Return the domain in words ("frontal chest radiographs")."""
        if self.description:
            return self.description
        words = []
        if self.views and set(self.views) <= set(FRONTAL_VIEWS):
            words.append("frontal")
        if self.body_parts:
            words.append("/".join(p.lower() for p in self.body_parts))
        families = sorted({modality_family(m) for m in self.modalities}) or ["image"]
        words.append("/".join(families) + "s")
        return " ".join(words)


@dataclass(frozen=True)
class Applicability:
    """Whether a model applies to an image, in words.

    Attributes
    ----------
    applicable : bool
        False when the header contradicts the model's domain.
    reasons : list of str
        Why not, one sentence each (empty when applicable).
    notes : list of str
        What could not be checked (e.g. a PNG has no body part).
    ood_percentile : float or None
        Out-of-distribution percentile (0-100) from the training embeddings,
        when computed (:mod:`medviewer.inference.ood`).
    unusual : bool or None
        The percentile is above the threshold chosen on held-out data.
    facts : ImageFacts or None
    """

    applicable: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ood_percentile: float | None = None
    unusual: bool | None = None
    ood_threshold: float | None = None
    facts: ImageFacts | None = None

    def with_ood(self, percentile: float | None, threshold: float | None) -> Applicability:
        """Return a copy carrying the out-of-distribution percentile and its verdict."""
        from dataclasses import replace

        unusual = None if percentile is None or threshold is None else bool(percentile >= threshold)
        return replace(self, ood_percentile=percentile, ood_threshold=threshold, unusual=unusual)

    def summary(self) -> str:
        """Return one line for a panel or the CLI: verdict first, then the reasons."""
        parts = []
        if not self.applicable:
            parts.append("Does not apply: " + " ".join(r[:1].upper() + r[1:] for r in self.reasons))
        if self.unusual:
            parts.append(f"Unusual for this model (out-of-distribution percentile "
                         f"{self.ood_percentile:.0f}, threshold {self.ood_threshold:.0f}).")
        if not parts:
            ood = ("" if self.ood_percentile is None else
                   f" (out-of-distribution percentile {self.ood_percentile:.0f})")
            parts.append(f"Within the model's domain{ood}.")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Return the CLI JSON fields (``applicable``, ``reasons``, ``ood_percentile``, ...)."""
        return {
            "applicable": self.applicable,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "ood_percentile": None if self.ood_percentile is None else round(float(self.ood_percentile), 2),
            "unusual": self.unusual,
            "ood_threshold": self.ood_threshold,
            "summary": self.summary(),
            "image": self.facts.to_dict() if self.facts else None,
        }


def check_applicability(domain: Domain | dict | None, facts: ImageFacts) -> Applicability:
    """Compare an image's header facts with a model's domain.

    Parameters
    ----------
    domain : Domain, metadata dict, or None
        None (a bundle without a declared domain) gives ``applicable`` with a note.
    facts : ImageFacts

    Returns
    -------
    Applicability
    """
    if isinstance(domain, dict):
        domain = Domain.from_metadata(domain if "domain" in domain else {"domain": domain})
    if domain is None:
        return Applicability(True, notes=["the model declares no domain (exported before domain "
                                          "checks): nothing was checked"], facts=facts)
    trained = f"this model was trained on {domain.describe()}"
    image = facts.describe()
    reasons, notes = [], []
    if facts.source not in ("dicom",):
        family = "radiograph"
        notes.append(f"{facts.source.upper() if facts.source != 'array' else 'the image'} has no DICOM "
                     "header: modality, body part and view are assumed, not checked")
    else:
        family = modality_family(facts.modality)
    wanted_families = {modality_family(m) for m in domain.modalities}
    if facts.frames > 1 and facts.modality in (None, "US", "XA", "RF"):
        notes.append(f"{facts.frames} frames: one frame is classified")
    if domain.modalities and family not in wanted_families:
        reasons.append(f"{trained}; this image is {image}.")
    elif domain.body_parts and facts.body_part and facts.body_part not in domain.body_parts:
        reasons.append(f"{trained}; this image is {image}.")
    elif domain.views and facts.view and facts.view not in domain.views:
        reasons.append(f"{trained}; this image is a {facts.view} view.")
    if facts.colour and domain.photometric and not any(p.startswith(("RGB", "YBR")) for p in domain.photometric):
        reasons.append(f"{trained} in greyscale; this image is in colour.")
    side = min(v for v in (facts.rows, facts.columns) if v) if (facts.rows and facts.columns) else None
    if domain.min_size and side is not None and side < domain.min_size:
        reasons.append(f"this image is {facts.columns}x{facts.rows} px; the model needs at least "
                       f"{domain.min_size} px on the short side (smaller images are upscaled from too little detail).")
    if facts.source == "dicom" and facts.body_part is None and domain.body_parts:
        notes.append("the header names no body part")
    return Applicability(not reasons, reasons, notes, facts=facts)


def applicability_of_path(meta: dict[str, Any], path: str | Path | Any) -> Applicability:
    """Return the header check of one image file against a bundle's metadata (no model run).

    This is the function callers outside inference use (the reader-study design,
    search candidates): it needs no ONNX session.
    """
    return check_applicability(Domain.from_metadata(meta), image_facts(path))


_OOD_CACHE: dict[tuple[str, str], Any] = {}


def ood_reference(bundle):
    """Return the bundle's :class:`~medviewer.inference.ood.OodReference` (loaded once), or None."""
    from medviewer.inference.ood import OodReference

    key = (str(bundle.path), str(bundle.metadata.get("ood", {}).get("sha256", "")))
    if key not in _OOD_CACHE:
        _OOD_CACHE[key] = OodReference.from_bundle(bundle)
    return _OOD_CACHE[key]


def assess(bundle, facts: ImageFacts, embedding=None, image=None) -> Applicability:
    """Return the header check and, given the image's embedding, its out-of-distribution percentile.

    Parameters
    ----------
    bundle : Bundle
    facts : ImageFacts
        From :func:`image_facts` (or :func:`facts_from_pixels` for bare pixels).
    embedding : np.ndarray, optional
        The image's embedding from this bundle; without it (or when the bundle
        carries no summary) the percentile is None and a note says why.
    image : np.ndarray, optional
        The display image, for the pixel half of the percentile.
    """
    result = check_applicability(Domain.from_metadata(bundle.metadata), facts)
    reference = ood_reference(bundle)
    if reference is None:
        from dataclasses import replace

        return replace(result, notes=[*result.notes, "the model carries no summary of its training "
                                      "embeddings: how unusual the image is cannot be told"])
    if embedding is None:
        return result
    percentile = float(reference.percentiles(embedding, None if image is None else [image])[0])
    return result.with_ood(percentile, reference.threshold)
