"""Write a radiology report for each chest phantom, from what was drawn into it.

The report says what the phantom shows (findings, severity, side, zone, size),
in varied wording (synonyms a phrase search must bridge: "cardiomegaly",
"enlarged cardiac silhouette"), denies some absent findings in the common
negation forms ("no focal consolidation", "emphysema is not seen"), and gives
normal films a normal report.  Sections: INDICATION (why it was asked for,
sometimes naming a finding that is *not* there: "rule out pneumonia"),
FINDINGS and IMPRESSION.  So text search and the image-text model can be
measured exactly against the phantom's truth.
"""

from __future__ import annotations

import numpy as np

from medviewer.synthetic.chest import CARDIOMEGALY, EMPHYSEMA, OPACITY, ChestImage

# A phantom chest is about 2 body units across the ribs: ~34 cm in an adult.
_CM_PER_BODY_UNIT = 17.0

INDICATIONS = (
    "Cough.", "Shortness of breath.", "Fever, rule out pneumonia.", "Chest pain.",
    "Preoperative assessment.", "Follow-up.", "Dyspnoea on exertion.", "Routine screening.",
    "Productive cough for two weeks.", "Hypoxia.",
)


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def opacity_regions(image: ChestImage) -> list[dict]:
    """Return side, zone and size (cm) of each connected opacity of the phantom's mask."""
    from scipy import ndimage

    mask = image.mask > 0
    if not mask.any():
        return []
    labelled, count = ndimage.label(mask)
    size = mask.shape[0]
    rows = np.flatnonzero(image.lungs.any(axis=1))
    top, bottom = (rows[0], rows[-1]) if rows.size else (0, size - 1)
    cm_per_px = _CM_PER_BODY_UNIT / (0.5 * size * image.anatomy.scale)
    regions = []
    for index, sl in enumerate(ndimage.find_objects(labelled), start=1):
        if sl is None:
            continue
        rr, cc = np.nonzero(labelled[sl] == index)
        row = sl[0].start + rr.mean()
        col = sl[1].start + cc.mean()
        # PA display: the patient's right is on the image's left.
        side = "right" if col < size / 2 else "left"
        where = (row - top) / max(bottom - top, 1)
        zone = "upper" if where < 1 / 3 else "mid" if where < 2 / 3 else "lower"
        extent = max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start) * cm_per_px
        regions.append({"side": side, "zone": zone, "size_cm": round(float(extent), 1)})
    return regions


def _size_word(cm: float) -> str:
    return "small" if cm < 4.0 else "moderate" if cm < 7.0 else "large"


def _heart(rng, ctr: float) -> tuple[str, str]:
    grade = "mild" if ctr < 0.61 else "moderate" if ctr < 0.65 else "marked"
    adverb = {"mild": "mildly", "moderate": "moderately", "marked": "markedly"}[grade]
    finding = _pick(rng, (
        f"{grade.capitalize()} cardiomegaly.",
        f"The cardiac silhouette is {adverb} enlarged (cardiothoracic ratio {ctr:.2f}).",
        f"The heart is {adverb} enlarged.",
        f"{grade.capitalize()} enlargement of the cardiac silhouette, consistent with cardiomegaly.",
    ))
    impression = _pick(rng, (f"{grade.capitalize()} cardiomegaly.", "Cardiomegaly.",
                             "Enlarged heart."))
    return finding, impression


def _emphysema(rng) -> tuple[str, str]:
    finding = _pick(rng, (
        "The lungs are hyperinflated with flattened hemidiaphragms, consistent with emphysema.",
        "Hyperexpanded, hyperlucent lungs in keeping with emphysema.",
        "Changes of emphysema with low flat diaphragms.",
        "Hyperinflated lungs.",
    ))
    impression = _pick(rng, ("Emphysema.", "Hyperinflation, in keeping with COPD.",
                             "Emphysematous lungs."))
    return finding, impression


def _opacity(rng, regions: list[dict]) -> tuple[str, str]:
    sides = sorted({r["side"] for r in regions})
    zones = sorted({r["zone"] for r in regions}, key=("upper", "mid", "lower").index)
    largest = max(regions, key=lambda r: r["size_cm"])
    side = "bilateral" if len(sides) == 2 else sides[0]
    where = (f"both {' and '.join(zones)} zones" if side == "bilateral"
             else f"the {side} {' and '.join(zones)} zone{'s' if len(zones) > 1 else ''}")
    size = _size_word(largest["size_cm"])
    noun = _pick(rng, ("consolidation", "airspace opacity", "opacity", "patchy consolidation"))
    finding = _pick(rng, (
        f"There is {size} {noun} in {where}.",
        f"{size.capitalize()} {noun} in {where}, measuring approximately {largest['size_cm']:.1f} cm.",
        f"{noun.capitalize()} is seen in {where}.",
    ))
    if side != "bilateral" and len(zones) == 1 and zones[0] != "mid" and rng.random() < 0.5:
        finding += f" Appearance suggests {side} {zones[0]} lobe consolidation."
    impression = _pick(rng, (f"{side.capitalize()} {noun}.", f"{noun.capitalize()}, likely infective.",
                             f"{side.capitalize()} sided consolidation."))
    return finding, impression


_NO_HEART = ("Heart size is normal.", "No cardiomegaly.", "The cardiomediastinal silhouette is "
             "within normal limits.", "The heart is not enlarged.")
_NO_EMPHYSEMA = ("Lung volumes are normal.", "No hyperinflation.", "No evidence of emphysema.",
                 "Emphysema is not seen.")
_NO_OPACITY = ("The lungs are clear.", "No focal consolidation.", "No focal airspace opacity.",
               "No consolidation, effusion or pneumothorax.")
_EXTRAS = ("No pleural effusion or pneumothorax.", "No pneumothorax.", "The bones are unremarkable.",
           "Mediastinal contours are normal.")
_NORMAL_IMPRESSION = ("No acute cardiopulmonary abnormality.", "Normal chest radiograph.",
                      "No active disease.", "Normal study.")


def write_report(image: ChestImage, rng: np.random.Generator) -> str:
    """Return a report of ``image`` (sections INDICATION, FINDINGS, IMPRESSION).

    The same generator state gives the same text.
    """
    anatomy = image.anatomy
    findings, impressions = [], []
    present = set(anatomy.findings)
    if CARDIOMEGALY in present:
        f, i = _heart(rng, anatomy.ctr)
        findings.append(f)
        impressions.append(i)
    elif rng.random() < 0.7:
        findings.append(_pick(rng, _NO_HEART))
    if EMPHYSEMA in present:
        f, i = _emphysema(rng)
        findings.append(f)
        impressions.append(i)
    elif rng.random() < 0.5:
        findings.append(_pick(rng, _NO_EMPHYSEMA))
    regions = opacity_regions(image) if OPACITY in present else []
    if regions:
        f, i = _opacity(rng, regions)
        findings.append(f)
        impressions.append(i)
    elif rng.random() < 0.7:
        findings.append(_pick(rng, _NO_OPACITY))
    if rng.random() < 0.5:
        findings.append(_pick(rng, _EXTRAS))
    if not impressions:
        impressions.append(_pick(rng, _NORMAL_IMPRESSION))
    order = rng.permutation(len(findings)) if rng.random() < 0.3 else range(len(findings))
    body = " ".join(findings[int(j)] for j in order)
    return (f"INDICATION: {_pick(rng, INDICATIONS)}\nFINDINGS: {anatomy.view} view. {body}\n"
            f"IMPRESSION: {' '.join(impressions)}")
