"""Render CT-like chest/upper-abdomen volumes in Hounsfield units.

The volume is a stack of axial slices from the upper abdomen (slice 0) to the
lung apices (last slice).  Each slice is an elliptic trunk: skin-to-muscle
subcutaneous fat (about -100 HU) whose thickness follows the body-mass
index, a muscle wall (about 50 HU), and inside it lungs (about -850 HU) with
vessels in the upper slices, heart and mediastinum (about 40 HU), liver
(about 60 HU) and stomach in the lower slices, a vertebra (about 700 HU),
ribs and the sternum.  The trunk's cross-section area is proportional to
weight / height, so (0010,1030) Patient's Weight can be regressed from the
images, as in the CT patient-weight task of the retrieval literature.

Image axes follow DICOM patient coordinates (LPS) with Image Orientation
(Patient) ``[1, 0, 0, 0, 1, 0]``: columns run to the patient's left, rows to
the patient's back, so the liver appears on the image's left and the spine
at the bottom.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medviewer.synthetic.chest import smooth_noise

AIR_HU = -1000.0
FAT_HU = -100.0
MUSCLE_HU = 50.0
SOFT_TISSUE_HU = 40.0
LUNG_HU = -850.0
LIVER_HU = 60.0
BONE_HU = 700.0

# Cross-section area (mm^2) per (kg / m): a 70 kg, 1.70 m adult has a chest about
# 330 x 230 mm.
AREA_PER_KG_PER_M = 1450.0
RECONSTRUCTION_DIAMETER_MM = 500.0

# Angles (radians, 0 = patient's left, pi/2 = back) of the rib cross-sections.
_ALL_ANGLES = np.linspace(0.0, 2 * np.pi, 18, endpoint=False) + np.pi / 18
RIB_ANGLES = tuple(
    float(a) for a in _ALL_ANGLES
    if abs(a - np.pi / 2) > 0.45 and abs(a - 3 * np.pi / 2) > 0.35
)


@dataclass(frozen=True)
class CTBody:
    """Habitus of one CT phantom, in millimetres.

    Attributes
    ----------
    half_lateral, half_ap : float
        Semi-axes of the trunk's outer (skin) ellipse.
    fat_mm : float
        Subcutaneous fat thickness.
    centre_x, centre_y : float
        Offset of the trunk's centre from the isocentre.
    weight_kg, height_m : float
        Habitus the geometry was derived from.
    """

    half_lateral: float
    half_ap: float
    fat_mm: float
    centre_x: float
    centre_y: float
    weight_kg: float
    height_m: float

    @property
    def area_mm2(self) -> float:
        """Area of the trunk's cross-section (the outer ellipse)."""
        return float(np.pi * self.half_lateral * self.half_ap)


def sample_body(
    rng: np.random.Generator, weight_kg: float, height_m: float, fatness: float
) -> CTBody:
    """Derive a trunk geometry from weight, height and fatness (0 thin .. 1 obese).

    The cross-section area is ``AREA_PER_KG_PER_M * weight / height`` within
    about 5 %, and the subcutaneous fat is 4-45 mm thick.
    """
    area = AREA_PER_KG_PER_M * weight_kg / height_m * rng.uniform(0.95, 1.05)
    # Heavier bodies are rounder (the belly grows forward).
    aspect = rng.uniform(1.35, 1.5) - 0.15 * fatness
    half_ap = float(np.sqrt(area / (np.pi * aspect)))
    half_lateral = float(aspect * half_ap)
    half_lateral = min(half_lateral, 0.48 * RECONSTRUCTION_DIAMETER_MM)
    fat = float(np.clip(4.0 + 40.0 * fatness + rng.normal(0, 2.0), 3.0, 0.3 * half_ap))
    return CTBody(
        half_lateral=half_lateral,
        half_ap=min(half_ap, 0.45 * RECONSTRUCTION_DIAMETER_MM),
        fat_mm=fat,
        centre_x=float(rng.uniform(-10, 10)),
        centre_y=float(rng.uniform(-15, 5)),
        weight_kg=weight_kg,
        height_m=height_m,
    )


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float) -> np.ndarray:
    """Return a boolean mask of the ellipse centred at (cx, cy) with semi-axes (a, b)."""
    dx = (x - np.float32(cx)) * np.float32(1.0 / a)
    dy = (y - np.float32(cy)) * np.float32(1.0 / b)
    return dx * dx + dy * dy <= 1.0


def render_ct_volume(
    body: CTBody,
    rng: np.random.Generator,
    *,
    size: int = 256,
    slices: int = 48,
) -> np.ndarray:
    """Render a volume in Hounsfield units.

    Parameters
    ----------
    body : CTBody
        Habitus from :func:`sample_body`.
    rng : numpy.random.Generator
        Source of anatomy jitter and noise; the same state gives the same voxels.
    size : int
        Rows and columns per slice (the reconstruction diameter is fixed at
        500 mm, so the pixel spacing is ``500 / size`` mm).
    slices : int
        Number of axial slices; slice 0 is the most inferior.

    Returns
    -------
    ndarray of int16, shape (slices, size, size)
        Hounsfield units, air -1000 .. bone about 1000.
    """
    if size < 32 or slices < 4:
        raise ValueError(f"need at least 32 x 32 pixels and 4 slices, got {size} and {slices}")
    f32 = np.float32
    spacing = RECONSTRUCTION_DIAMETER_MM / size
    axis = ((np.arange(size, dtype=np.float32) - (size - 1) / 2.0) * spacing).astype(np.float32)
    x = np.broadcast_to(axis[None, :], (size, size))  # toward the patient's left
    y = np.broadcast_to(axis[:, None], (size, size))  # toward the patient's back

    cx, cy = body.centre_x, body.centre_y
    muscle_mm = rng.uniform(10.0, 16.0)
    right_base, left_base = rng.uniform(0.36, 0.42), rng.uniform(0.3, 0.35)
    liver_top = right_base + 0.06
    heart_shift = rng.uniform(-5.0, 5.0)
    volume = np.empty((slices, size, size), dtype=np.int16)
    # Smooth texture shared by the slices (parenchyma is not white noise).
    texture = smooth_noise(rng, size, max(4, size // 6))
    vessels = np.exp(-(smooth_noise(rng, size, max(4, size // 5)) ** 2) * f32(1 / 0.02))

    for k in range(slices):
        t = k / (slices - 1)  # 0 = upper abdomen, 1 = lung apex
        # The belly bulges in the lower slices of heavier bodies.
        belly = 1.0 + 0.06 * (1.0 - t) * (body.fat_mm / 45.0)
        a_out, b_out = body.half_lateral * (0.96 + 0.04 * t), body.half_ap * belly
        a_in, b_in = a_out - body.fat_mm, b_out - body.fat_mm
        a_cav, b_cav = a_in - muscle_mm, b_in - muscle_mm * 1.3

        hu = np.full((size, size), AIR_HU, dtype=np.float32)
        hu[_ellipse(x, y, cx, cy, a_out, b_out)] = FAT_HU
        hu[_ellipse(x, y, cx, cy, a_in, b_in)] = MUSCLE_HU
        cavity = _ellipse(x, y, cx, cy, a_cav, b_cav)
        # Inside the wall: soft tissue, streaked with visceral fat in the abdomen.
        hu[cavity] = SOFT_TISSUE_HU
        if t < 0.45:
            fatty = cavity & (texture > 0.6 - 0.8 * body.fat_mm / 45.0)
            hu[fatty] = FAT_HU
        px = (x - f32(cx)) * f32(1.0 / a_cav)  # normalised cavity coordinates
        py = (y - f32(cy)) * f32(1.0 / b_cav)

        # Liver under the right hemidiaphragm (image left), growing downward.
        if t < liver_top:
            grow = np.sqrt(min(1.0, (liver_top - t) / 0.15))
            liver = cavity & _ellipse(px, py, -0.35, -0.05, 0.6 * grow + 0.05, 0.8 * grow + 0.05)
            hu[liver] = LIVER_HU
        # Stomach under the left hemidiaphragm, with an air-fluid level.
        if t < left_base + 0.02:
            grow = np.sqrt(min(1.0, (left_base + 0.02 - t) / 0.12))
            stomach = cavity & _ellipse(px, py, 0.45, -0.25, 0.25 * grow + 0.02, 0.3 * grow + 0.02)
            hu[stomach] = 10.0
            hu[stomach & (py < -0.35)] = AIR_HU

        # Lungs: grow from the domes, shrink toward the apices.
        for side, base in ((-1, right_base), (1, left_base)):
            if t <= base:
                continue
            g = np.sqrt(min(1.0, (t - base) / 0.15)) * (1.0 - 0.65 * max(0.0, (t - 0.7) / 0.3))
            lung = cavity & _ellipse(px, py, side * 0.5, 0.05, 0.4 * g + 0.02, 0.82 * g + 0.02)
            lung &= np.abs(px) > 0.16  # mediastinum
            hu[lung] = LUNG_HU + 450.0 * vessels[lung] + 25.0 * texture[lung]
        # Heart: anterior, left of the midline, between the domes and mid-chest.
        if left_base - 0.02 < t < 0.68:
            g = np.sin(np.pi * (t - left_base + 0.02) / (0.7 - left_base))
            heart = _ellipse(x, y, cx + a_cav * 0.12 + heart_shift, cy - b_cav * 0.2,
                             a_cav * 0.33 * g + 1, b_cav * 0.45 * g + 1)
            hu[heart & cavity] = SOFT_TISSUE_HU
        # Descending aorta, left-anterior of the spine.
        if t > 0.15:
            hu[_ellipse(x, y, cx + 0.1 * a_cav, cy + 0.55 * b_cav, 12.0, 12.0)] = SOFT_TISSUE_HU

        # Vertebra: body, canal, spinous process; ribs; sternum.
        vb_y = cy + b_cav - 22.0
        hu[_ellipse(x, y, cx, vb_y, 18.0, 15.0)] = BONE_HU
        hu[_ellipse(x, y, cx, vb_y + 24.0, 8.0, 7.0)] = 20.0
        hu[_ellipse(x, y, cx, vb_y + 42.0, 5.0, 11.0)] = BONE_HU
        if t > 0.25:
            # Ribs sit just outside the cavity, except behind the spine and sternum.
            for angle in RIB_ANGLES:
                rx = cx + (a_cav + 4.0) * np.cos(angle)
                ry = cy + (b_cav + 4.0) * np.sin(angle)
                hu[_ellipse(x, y, rx, ry, 6.0, 4.5)] = BONE_HU
            hu[_ellipse(x, y, cx, cy - b_cav - 4.0, 14.0, 5.0)] = 600.0

        # Quantum noise, so a region's HU is a mean, not a constant.
        hu += rng.standard_normal((size, size), dtype=np.float32) * f32(12.0)
        volume[k] = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    return volume
