"""The patient split of the training recipe, reproduced for evaluation.

Retrieval is evaluated on the test split of the model's own training split,
so the queries and the searched cases are images the model never saw.  The
split must therefore be the one ``models/data.py::split_by_patient`` makes;
``medviewer`` may not import ``models/``, so the algorithm is repeated here
and a test compares the two (same patients, same seed, same sets).

The algorithm: the distinct patient IDs, sorted, are shuffled by
``numpy.random.default_rng(seed)``; the first ``round(f_train * P)`` go to
train, up to ``round((f_train + f_val) * P)`` to validation, the rest to test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_FRACTIONS = (0.6, 0.3, 0.1)
SPLITS = ("train", "val", "test")


def patient_split(patient_ids: Sequence[str], fractions: Sequence[float] = DEFAULT_FRACTIONS,
                  seed: int = 0) -> dict[str, str]:
    """Return ``{patient_id: "train" | "val" | "test"}`` as the training recipe splits them.

    Parameters
    ----------
    patient_ids : sequence of str
        Patient IDs of all images (repeats are fine).
    fractions : three floats
        Train, validation and test shares of the patients, summing to 1.
    seed : int
        The training recipe's seed (``recipe.seed`` in the bundle metadata).
    """
    fractions = np.asarray(fractions, dtype=float)
    if len(fractions) != 3 or np.any(fractions < 0) or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, not {fractions}")
    patients = sorted(set(patient_ids))
    np.random.default_rng(seed).shuffle(patients)
    bounds = np.round(np.cumsum(fractions) * len(patients)).astype(int)
    out = {}
    for index, patient in enumerate(patients):
        out[patient] = SPLITS[0] if index < bounds[0] else SPLITS[1] if index < bounds[1] else SPLITS[2]
    return out
