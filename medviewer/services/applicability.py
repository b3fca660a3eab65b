"""Say whether an AI output applies, for the CLI and the panels: header check, OOD percentile, query family.

No Qt.  ``image_applicability`` gives the verdict for one image and a model
(header facts + the image's out-of-distribution percentile);
``family_filter`` narrows a search to the query's modality family unless the
user asked for other modalities; ``best_match_note`` says when the best
neighbour is less similar than in-domain queries' best neighbours are.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from medviewer.inference.applicability import (
    MODALITY_FAMILIES,
    Applicability,
    ImageFacts,
    assess,
    facts_from_pixels,
    image_facts,
    modality_family,
    ood_reference,
)


def image_applicability(runner, source: str | Path | ImageFacts | None, image: np.ndarray | None = None,
                        embedding: np.ndarray | None = None) -> Applicability:
    """Return the applicability of a model (a :class:`~medviewer.inference.ModelRunner`) to one image.

    Parameters
    ----------
    runner : ModelRunner
    source : path, ImageFacts or None
        The image file (its header is read), facts already read, or None for
        bare pixels (only size and colour are checked).
    image : np.ndarray, optional
        The display image; embedded for the OOD percentile unless
        ``embedding`` is given.
    embedding : np.ndarray, optional
    """
    if isinstance(source, ImageFacts):
        facts = source
    elif source is not None:
        facts = image_facts(source)
    else:
        facts = facts_from_pixels(image)
    bundle = runner.bundle
    if embedding is None and image is not None and bundle.outputs.get("embedding") and ood_reference(bundle):
        embedding = runner.embed([image])
    return assess(bundle, facts, embedding, image)


def family_codes(family: str) -> tuple[str, ...]:
    """Return the (0008,0060) codes of a modality family (``radiograph`` -> CR, DX, ...)."""
    return MODALITY_FAMILIES.get(family, (family,))


def family_filter(flt, facts: ImageFacts, any_modality: bool = False) -> tuple[Any, str | None]:
    """Return the search filter narrowed to the query's modality family, and that in words.

    The user's own modality choice (``flt.modalities``) or ``any_modality`` wins.
    """
    if flt.modalities or any_modality:
        return flt, None
    family = modality_family(facts.modality)
    codes = family_codes(family)
    return (replace(flt, modalities=tuple(codes)),
            f"only {family} cases ({', '.join(codes)}), the query's modality family; ask for other "
            "modalities to see them")


def best_match_note(bundle, result) -> str | None:
    """Return a sentence when the best neighbour is weaker than in-domain queries usually get."""
    reference = ood_reference(bundle)
    if reference is None or not result.nearest or result.nearest[0].similarity is None:
        return None
    return reference.best_match_words(float(result.nearest[0].similarity))
