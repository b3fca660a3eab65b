"""Synchronised scrolling by patient position, not by index, and when it does not apply.

Two stacks are linked by position when they lie in one frame of reference
((0020,0052) Frame of Reference UID: the same patient coordinate system) and their
slices are parallel enough that "the same position" means something.  The
follower goes to its slice nearest the leader's position along the follower's
normal (projected from (0020,0032) Image Position (Patient)), and stays where it
is when the leader is beyond its ends.  Stacks without positions (radiographs,
cine loops) follow by relative position through the stack instead.  Every
decision comes with a sentence saying which rule applied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_ANGLE_DEG = 30.0  # beyond this the stacks cut different anatomy at "the same" position


@dataclass(frozen=True)
class SyncDecision:
    """Where a follower goes (``None``: stays) and why, in words."""

    index: int | None
    reason: str
    by_position: bool = False


def _geometry(planes: Sequence) -> tuple[np.ndarray, np.ndarray] | None:
    """Return (normal, centre of each plane) of a stack, or ``None`` without full geometry."""
    positions, orientation = [], None
    for plane in planes:
        inst = plane.instance
        if inst.image_position is None or inst.image_orientation is None:
            return None
        if orientation is None:
            orientation = np.asarray(inst.image_orientation, dtype=float)
        positions.append(inst.image_position)
    if orientation is None or len(orientation) != 6:
        return None
    normal = np.cross(orientation[:3], orientation[3:])
    norm = float(np.linalg.norm(normal))
    if norm == 0:
        return None
    return normal / norm, np.asarray(positions, dtype=float)


def follow_by_position(source_planes: Sequence, source_index: int, target_planes: Sequence,
                       source_frame: str = "", target_frame: str = "") -> SyncDecision:
    """Decide where a follower stack goes when the leader shows ``source_index``.

    Parameters
    ----------
    source_planes, target_planes : sequence of PlaneRef
        The stacks (their instances' ``image_position`` and ``image_orientation``).
    source_index : int
        The plane the leader shows.
    source_frame, target_frame : str
        Frame of Reference UIDs ("" when unknown).
    """
    if len(target_planes) < 2 or not source_planes:
        return SyncDecision(None, "a single image does not scroll")
    if source_frame and target_frame and source_frame != target_frame:
        return SyncDecision(None, "not linked: the series are in different frames of reference "
                                  "(another study or scanner position), so the same position "
                                  "is not the same anatomy")
    source, target = _geometry(source_planes), _geometry(target_planes)
    if source is None or target is None:
        fraction = source_index / max(1, len(source_planes) - 1)
        return SyncDecision(round(fraction * (len(target_planes) - 1)),
                            "linked by relative position: a series has no slice positions")
    (n_src, p_src), (n_tgt, p_tgt) = source, target
    angle = math.degrees(math.acos(min(1.0, abs(float(n_src @ n_tgt)))))
    if angle > MAX_ANGLE_DEG:
        return SyncDecision(None, f"not linked: the slices are {angle:.0f} degrees apart "
                                  "(different planes)")
    point = p_src[int(np.clip(source_index, 0, len(p_src) - 1))]
    along = p_tgt @ n_tgt
    here = float(point @ n_tgt)
    nearest = int(np.argmin(np.abs(along - here)))
    gaps = np.diff(np.sort(along))
    half = float(np.median(gaps)) / 2 if gaps.size else 0.0
    if here < along.min() - half or here > along.max() + half:
        return SyncDecision(None, "not moved: the position is beyond the other series' slices",
                            by_position=True)
    unknown = "" if source_frame and target_frame else " (frame of reference not in the header)"
    return SyncDecision(nearest, f"linked by patient position{unknown}", by_position=True)
