"""Render chest-radiograph-like phantoms with optional findings.

The phantom is drawn analytically in *body coordinates* ``(u, v)``: ``u`` runs
from the image's left to its right (the patient's right to left on a PA film),
``v`` from head to feet, both about -1..1 across the chest.  Every structure
is a soft-edged region built from a few vectorised numpy operations on
precomputed coordinate grids, so a 512 x 512 film takes a few tens of
milliseconds and looks the same (only sharper) at any size.

The output is a *density* image in display convention (bright = dense, as a
correctly displayed radiograph), in [0, 1], plus a lesion mask.  Findings:

- ``Cardiomegaly``: cardiothoracic ratio 0.58-0.68 (normal 0.38-0.47);
- ``Emphysema``: larger, hyperlucent lungs with low, flattened diaphragms;
- ``Opacity``: one to three patchy consolidations inside the lungs.

References
----------
Danzer CS. The cardiothoracic ratio: an index of cardiac enlargement.
Am J Med Sci 1919;157:513-21 (normal CTR below 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

CARDIOMEGALY = "Cardiomegaly"
EMPHYSEMA = "Emphysema"
OPACITY = "Opacity"
NO_FINDING = "No Finding"
FINDINGS = (CARDIOMEGALY, EMPHYSEMA, OPACITY)

# Each finding is drawn independently, so about 0.67**3 = 30 % of films are normal.
FINDING_PROBABILITY = 0.33

MIN_SIZE = 64


@dataclass(frozen=True)
class LungShape:
    """Geometry of one lung field in body coordinates (``s`` = distance from the midline)."""

    centre_s: float
    centre_v: float
    half_width: float
    half_height: float
    dome_v: float  # height of the diaphragm dome's top
    dome_curve: float  # how far the diaphragm drops at the costophrenic angle


@dataclass(frozen=True)
class ChestAnatomy:
    """Sampled parameters of one chest phantom (everything but the noise).

    Attributes
    ----------
    findings : tuple of str
        Findings drawn into the film, a subset of :data:`FINDINGS`.
    view : str
        ``"PA"`` or ``"AP"`` (an AP film magnifies the heart slightly).
    centre, scale, aspect, angle_deg
        Placement of the body in the frame: offset in normalised image
        coordinates, size, width/height ratio and in-plane rotation.
    fatness : float
        0 (thin) to 1 (obese): widens the soft tissue outline and lowers contrast.
    ctr : float
        Target cardiothoracic ratio (heart width / widest inner thorax).
    """

    findings: tuple[str, ...]
    view: str
    centre: tuple[float, float]
    scale: float
    aspect: float
    angle_deg: float
    fatness: float
    female: bool
    right_lung: LungShape
    left_lung: LungShape
    ctr: float
    heart_elongation: float  # long / short axis of the cardiac ellipse
    heart_tilt_deg: float
    lung_lucency: float
    vascularity: float
    rib_phase: float
    gastric_bubble: bool
    gamma: float
    black_level: float
    white_level: float
    noise_sigma: float
    opacity_count: int = 0


@dataclass(frozen=True)
class ChestImage:
    """A rendered chest phantom.

    Attributes
    ----------
    density : ndarray of float32, shape (size, size)
        Display-convention image in [0, 1] (bright = dense).
    mask : ndarray of uint8, shape (size, size)
        255 inside the union of the finding regions, 0 elsewhere.
    lungs : ndarray of bool
        Both lung fields (used to check that opacities lie inside them).
    heart : ndarray of bool
        The cardiac silhouette.
    anatomy : ChestAnatomy
        The parameters it was drawn from.
    """

    density: np.ndarray
    mask: np.ndarray
    lungs: np.ndarray
    heart: np.ndarray
    anatomy: ChestAnatomy

    @property
    def findings(self) -> tuple[str, ...]:
        """Findings present in the film."""
        return self.anatomy.findings

    @property
    def label_string(self) -> str:
        """Findings joined by ``|``, or ``No Finding``, as in ChestX-ray14."""
        return "|".join(self.findings) if self.findings else NO_FINDING


def sample_findings(rng: np.random.Generator, probability: float = FINDING_PROBABILITY) -> tuple:
    """Draw each finding independently with ``probability``; return them in canonical order."""
    draws = rng.random(len(FINDINGS))
    return tuple(name for name, u in zip(FINDINGS, draws) if u < probability)


def sample_anatomy(
    rng: np.random.Generator,
    findings: tuple[str, ...] | list[str] = (),
    *,
    view: str | None = None,
    fatness: float | None = None,
    female: bool | None = None,
) -> ChestAnatomy:
    """Draw the anatomy, placement and exposure of one film.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness; the same state gives the same anatomy.
    findings : sequence of str
        Findings to draw (names from :data:`FINDINGS`).
    view : {"PA", "AP"}, optional
        Projection; drawn (70 % PA) when omitted.
    fatness : float, optional
        Body habitus in [0, 1]; drawn when omitted.
    female : bool, optional
        Adds faint breast shadows; drawn when omitted.

    Returns
    -------
    ChestAnatomy
    """
    unknown = set(findings) - set(FINDINGS)
    if unknown:
        raise ValueError(f"unknown findings {sorted(unknown)}; expected names from {FINDINGS}")
    findings = tuple(name for name in FINDINGS if name in set(findings))
    emphysema = EMPHYSEMA in findings
    if view is None:
        view = "PA" if rng.random() < 0.7 else "AP"
    if fatness is None:
        fatness = float(rng.beta(2.0, 3.0))
    if female is None:
        female = bool(rng.random() < 0.5)

    def lung(side_sign: int) -> LungShape:
        # The left hemidiaphragm (side +1 on a PA film) sits a little lower: the liver
        # pushes the right one up.
        dome = 0.29 + (0.04 if side_sign > 0 else 0.0) + rng.uniform(-0.03, 0.03)
        curve = rng.uniform(0.12, 0.16)
        half_height = rng.uniform(0.78, 0.82)
        half_width = rng.uniform(0.27, 0.29)
        if emphysema:
            # Hyperinflation: the domes are pushed down and flattened, the fields grow.
            dome += rng.uniform(0.12, 0.16)
            curve *= rng.uniform(0.25, 0.4)
            half_height *= 1.08
            half_width *= 1.04
        return LungShape(
            centre_s=0.35 + rng.uniform(-0.01, 0.01),
            centre_v=0.15,
            half_width=half_width,
            half_height=half_height,
            dome_v=dome,
            dome_curve=curve,
        )

    right, left = lung(-1), lung(+1)
    if CARDIOMEGALY in findings:
        ctr = rng.uniform(0.58, 0.68)
        # An enlarged heart lies more transversely and is rounder.
        elongation, tilt = rng.uniform(1.1, 1.25), rng.uniform(55.0, 70.0)
    else:
        ctr = rng.uniform(0.38, 0.47)
        elongation, tilt = rng.uniform(1.2, 1.4), rng.uniform(35.0, 50.0)
    if emphysema:
        ctr -= 0.02  # the long, narrow heart of a hyperinflated chest
    if view == "AP":
        ctr *= 1.05  # the heart is farther from the detector and magnified
    n_opacities = int(rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25])) if OPACITY in findings else 0
    return ChestAnatomy(
        findings=findings,
        view=view,
        centre=(rng.uniform(-0.04, 0.04), rng.uniform(-0.03, 0.05)),
        scale=rng.uniform(0.9, 1.02),
        aspect=rng.uniform(0.95, 1.05),
        angle_deg=rng.uniform(-3.0, 3.0),
        fatness=fatness,
        female=female,
        right_lung=right,
        left_lung=left,
        ctr=float(ctr),
        heart_elongation=float(elongation),
        heart_tilt_deg=float(tilt),
        lung_lucency=rng.uniform(0.58, 0.64) if emphysema else rng.uniform(0.45, 0.5),
        vascularity=rng.uniform(0.03, 0.05) if emphysema else rng.uniform(0.09, 0.13),
        rib_phase=rng.uniform(0.0, 1.0),
        gastric_bubble=bool(rng.random() < 0.6),
        gamma=rng.uniform(0.9, 1.12),
        black_level=rng.uniform(0.02, 0.07),
        white_level=rng.uniform(0.9, 0.97),
        noise_sigma=rng.uniform(0.006, 0.012),
        opacity_count=n_opacities,
    )


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return read-only normalised pixel-centre coordinates (x right, y down) in [-1, 1]."""
    axis = ((np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0).astype(np.float32)
    x = np.broadcast_to(axis[None, :], (size, size))
    y = np.broadcast_to(axis[:, None], (size, size))
    return x, y


def _ramp(margin: np.ndarray, width: float) -> np.ndarray:
    """Map a signed margin (positive inside) to a soft 0..1 edge ``width`` wide."""
    out = margin * np.float32(1.0 / width)
    out += np.float32(0.5)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Return zero-mean, roughly unit-variance noise smooth over ``size / cells`` pixels."""
    coarse = rng.standard_normal((cells, cells), dtype=np.float32)
    # Bicubic upsampling in Pillow is deterministic and much faster than a convolution.
    return np.array(Image.fromarray(coarse, mode="F").resize((size, size), Image.BICUBIC))


def _body_coordinates(anatomy: ChestAnatomy, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Map the image grid into the rotated, scaled, shifted body frame."""
    x, y = _grid(size)
    cx, cy = anatomy.centre
    theta = np.deg2rad(anatomy.angle_deg)
    c, s = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    dx = x - np.float32(cx)
    dy = y - np.float32(cy)
    u = (c * dx + s * dy) * np.float32(1.0 / (anatomy.scale * anatomy.aspect))
    v = (c * dy - s * dx) * np.float32(1.0 / anatomy.scale)
    return u, v


def _diaphragm(lung: LungShape, s: np.ndarray) -> np.ndarray:
    """Height of the hemidiaphragm under the lung at lateral distance ``s`` (v grows downward)."""
    t = (s - np.float32(0.30)) * np.float32(1.0 / 0.28)
    return np.float32(lung.dome_v) + np.float32(lung.dome_curve) * t * t


def _mediastinum_half_width(v: np.ndarray, side: int) -> np.ndarray:
    """Half-width of the upper mediastinum on one side, widening toward the heart.

    On the patient's left (``side`` +1 on a PA film) the aortic knob bulges out.
    """
    f32 = np.float32
    width = f32(0.085) + f32(0.035) * np.clip((v + f32(0.15)) * f32(1 / 0.3), 0.0, 1.0)
    if side > 0:
        width += f32(0.05) * np.exp(-((v + f32(0.27)) * f32(1 / 0.07)) ** 2)
    return width


def _lung_margin(lung: LungShape, side: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance-like margin of one lung field (positive inside)."""
    s = u * np.float32(side)
    a, b = lung.half_width, lung.half_height
    du = (s - np.float32(lung.centre_s)) * np.float32(1.0 / a)
    dv = (v - np.float32(lung.centre_v)) * np.float32(1.0 / b)
    r = np.sqrt(du * du + dv * dv)
    margin = (np.float32(1.0) - r) * np.float32(min(a, b))
    np.minimum(margin, _diaphragm(lung, s) - v, out=margin)
    np.minimum(margin, s - _mediastinum_half_width(v, side), out=margin)
    return margin


def _heart_geometry(anatomy: ChestAnatomy) -> tuple[float, float, float, float, float, float]:
    """Return centre (u, v), long and short half axes, tilt and floor of the cardiac ellipse.

    The ellipse is sized so that its horizontal extent gives the target
    cardiothoracic ratio; its long axis points down and toward the patient's
    left, and its lowest part is cut off where it sits on the diaphragm.
    """
    rl, ll = anatomy.right_lung, anatomy.left_lung
    thorax = (rl.centre_s + rl.half_width) + (ll.centre_s + ll.half_width)
    extent = 0.5 * anatomy.ctr * thorax  # half of the heart's horizontal extent
    phi = float(np.deg2rad(anatomy.heart_tilt_deg))  # from the vertical
    sin2, cos2 = np.sin(phi) ** 2, np.cos(phi) ** 2
    q = anatomy.heart_elongation
    short = float(extent / np.sqrt(q * q * sin2 + cos2))
    long = q * short
    vertical = float(np.sqrt(long * long * cos2 + short * short * sin2))
    # About a third of the heart lies right of the midline, two thirds left.
    cu = extent / 3.0
    floor = max(rl.dome_v, ll.dome_v) + 0.04
    cv = floor - 0.6 * vertical
    return cu, cv, long, short, phi, floor


def _heart_margin(anatomy: ChestAnatomy, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed margin of the cardiac silhouette, cut flat where it sits on the diaphragm."""
    f32 = np.float32
    cu, cv, long, short, phi, floor = _heart_geometry(anatomy)
    c, s = f32(np.cos(phi)), f32(np.sin(phi))
    du = u - f32(cu)
    dv = v - f32(cv)
    along = (s * du + c * dv) * f32(1.0 / long)  # along (sin phi, cos phi): down and right
    across = (c * du - s * dv) * f32(1.0 / short)
    margin = (f32(1.0) - np.sqrt(along * along + across * across)) * f32(short)
    np.minimum(margin, f32(floor) - v, out=margin)
    return margin


def render_chest(anatomy: ChestAnatomy, size: int, rng: np.random.Generator) -> ChestImage:
    """Draw one chest film.

    Parameters
    ----------
    anatomy : ChestAnatomy
        Parameters from :func:`sample_anatomy`.
    size : int
        Width and height in pixels (at least 64).
    rng : numpy.random.Generator
        Source of the noise; the same state gives the same pixels.

    Returns
    -------
    ChestImage
    """
    if size < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE} pixels, got {size}")
    f32 = np.float32
    u, v = _body_coordinates(anatomy, size)
    au = np.abs(u)
    top_dome = max(anatomy.right_lung.dome_v, anatomy.left_lung.dome_v)

    # Soft tissue: chord length through an elliptic trunk whose outline flares out
    # above the axillae into shoulders that leave the frame.
    trunk = f32(0.8 + 0.1 * anatomy.fatness)
    shoulder = np.clip((f32(-0.42) - v) * f32(1 / 0.4), 0.0, 1.0)
    half_width = trunk + f32(0.45) * shoulder * shoulder
    rel = np.clip(au / half_width, 0.0, 1.0)
    chord = np.sqrt(f32(1.0) - rel * rel)
    body = _ramp(half_width - au, 0.025)
    density = body * (f32(0.2 + 0.1 * anatomy.fatness) + f32(0.62) * chord)
    # Humeral heads at the top corners.
    head = (au - (trunk + f32(0.2))) ** 2 + (v + f32(0.82)) ** 2
    density += _ramp(f32(0.12 * 0.12) - head, 0.008) * f32(0.1)

    # Lungs subtract density (air); the thick middle of each field is darker than its rim.
    right_margin = _lung_margin(anatomy.right_lung, -1, u, v)
    left_margin = _lung_margin(anatomy.left_lung, +1, u, v)
    heart_margin = _heart_margin(anatomy, u, v)
    lung_margin = np.maximum(right_margin, left_margin)
    np.minimum(lung_margin, -heart_margin, out=lung_margin)
    lung = _ramp(lung_margin, 0.02)
    depth = f32(0.65) + f32(0.35) * np.clip(lung_margin * f32(1 / 0.12), 0.0, 1.0)
    lucency = f32(anatomy.lung_lucency * (1.0 - 0.1 * anatomy.fatness))
    density -= lung * depth * lucency

    # Vascular markings: lines radiating from the hila (zero crossings of a noise that
    # varies fast with the angle around the hilum and slowly with the distance from it),
    # densest near the hila and fading toward the periphery.
    hu = np.where(u < 0, f32(-0.14), f32(0.16))
    du, dv = u - hu, v - f32(-0.04)
    rho = np.sqrt(du * du + dv * dv)
    theta = np.arctan2(dv, du)
    polar = smooth_noise(rng, 256, 28)  # rows: angle, columns: distance
    # Warping the angle with a second noise makes the lines wander and branch.
    warp = smooth_noise(rng, size, 12) * f32(0.12)
    ti = (((theta + warp) * f32(255 / (2 * np.pi))).astype(np.intp)) % 256
    ri = np.minimum(rho * f32(90), f32(255)).astype(np.intp)
    n = polar[ti, ri]
    # Lines taper: wide near the hilum, thin in the periphery.
    vessels = np.exp(-(n * n) / (f32(0.01) + f32(0.08) * np.exp(-rho * f32(1 / 0.25))))
    hilar = np.exp(-(rho * rho) * f32(1 / 0.05))
    fade = np.exp(-rho * f32(1 / 0.35))
    start = _ramp(rho - f32(0.08), 0.08)  # no lines converging on a single point
    density += lung * f32(anatomy.vascularity) * (vessels * fade * start + f32(0.6) * hilar)

    # Heart a touch denser than the mediastinum around it.
    heart_soft = _ramp(heart_margin, 0.02)
    density += heart_soft * f32(0.04)

    # Spine: a faint vertical band with darker disc spaces, seen through the mediastinum.
    spine = _ramp(f32(0.045) - au, 0.02) * body
    density += spine * (f32(0.05) + f32(0.015) * np.cos(v * f32(2 * np.pi / 0.085)))

    # Posterior ribs slope down laterally; a periodic band in r = v - k u^2 draws them all.
    ribs_region = _ramp(au - f32(0.08), 0.04) * _ramp(half_width - au - f32(0.02), 0.04)
    ribs_region *= _ramp(v + f32(0.75), 0.05) * _ramp(f32(top_dome + 0.08) - v, 0.08)
    r = v - f32(0.6) * u * u + f32(anatomy.rib_phase * 0.12)
    rib = np.cos(r * f32(2 * np.pi / 0.12))
    rib -= f32(0.45)
    rib *= f32(3.0)
    np.clip(rib, 0.0, 1.0, out=rib)
    density += rib * ribs_region * (f32(0.02) + f32(0.035) * lung)
    # Anterior ribs: fainter, sloping down toward the midline, seen over the lungs.
    r2 = v + f32(0.35) * u * u - f32(0.25) * au
    rib2 = np.clip((np.cos(r2 * f32(2 * np.pi / 0.17)) - f32(0.6)) * f32(2.5), 0.0, 1.0)
    density += rib2 * lung * f32(0.025)

    # Clavicles: thick bars from the sternal ends up and out toward the shoulders.
    sc = au - f32(0.06)
    vc = f32(-0.54) - f32(0.45) * sc + f32(0.35) * sc * sc
    clavicle = _ramp(f32(0.028) - np.abs(v - vc), 0.02)
    clavicle *= _ramp(sc, 0.04) * _ramp(f32(0.64) - au, 0.06)
    density += clavicle * f32(0.08)

    if anatomy.female:
        # Breast shadows: soft density over the lower lateral lung zones.
        for side in (-1, 1):
            du = (u - f32(side * 0.42)) * f32(1 / 0.3)
            dv = (v - f32(0.38)) * f32(1 / 0.25)
            d = du * du + dv * dv
            density += _ramp(f32(1.0) - d, 0.8) * _ramp(v - f32(0.2), 0.1) * f32(0.05)

    if anatomy.gastric_bubble:
        gb_v = anatomy.left_lung.dome_v + 0.09
        d = ((u - f32(0.3)) * f32(1 / 0.09)) ** 2 + ((v - f32(gb_v)) * f32(1 / 0.05)) ** 2
        density -= _ramp(f32(1.0) - d, 0.4) * f32(0.12)

    lungs_mask = lung > 0.5
    heart_mask = heart_soft > 0.5
    mask = np.zeros((size, size), dtype=bool)
    if CARDIOMEGALY in anatomy.findings:
        mask |= heart_mask
    if EMPHYSEMA in anatomy.findings:
        mask |= lungs_mask
    if anatomy.opacity_count:
        mask |= _draw_opacities(anatomy, rng, density, lung, lung_margin, u, v, size)

    # Exposure: gentle gamma, black/white levels, a low-frequency heel effect, quantum noise.
    np.clip(density, 0.0, 1.0, out=density)
    density **= f32(anatomy.gamma)
    density *= f32(anatomy.white_level - anatomy.black_level)
    density += f32(anatomy.black_level)
    density += smooth_noise(rng, size, 4) * f32(0.015)
    density += smooth_noise(rng, size, 96) * f32(0.006)
    density += rng.standard_normal((size, size), dtype=np.float32) * f32(anatomy.noise_sigma)
    np.clip(density, 0.0, 1.0, out=density)
    return ChestImage(
        density=density,
        mask=(mask.astype(np.uint8) * np.uint8(255)),
        lungs=lungs_mask,
        heart=heart_mask,
        anatomy=anatomy,
    )


def _draw_opacities(
    anatomy: ChestAnatomy,
    rng: np.random.Generator,
    density: np.ndarray,
    lung: np.ndarray,
    lung_margin: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    size: int,
) -> np.ndarray:
    """Add patchy consolidations inside the lungs to ``density``; return their mask."""
    f32 = np.float32
    mask = np.zeros((size, size), dtype=bool)
    # Overlapping consolidations do not add up: take the densest at each pixel.
    added = np.zeros((size, size), dtype=np.float32)
    # Centres away from the lung edge, mostly in the lower two thirds of the fields,
    # where pneumonia and aspiration usually consolidate.
    candidates = np.flatnonzero((lung_margin > 0.09) & (v > -0.3))
    if candidates.size == 0:  # pragma: no cover - every sampled anatomy has lungs
        candidates = np.flatnonzero(lung_margin > 0)
    patch = smooth_noise(rng, size, 24)
    scale_px = 0.5 * size * anatomy.scale  # pixels per body unit
    for _ in range(anatomy.opacity_count):
        idx = int(candidates[rng.integers(candidates.size)])
        row, col = divmod(idx, size)
        radius = rng.uniform(0.18, 0.28)
        cu, cv = float(u[row, col]), float(v[row, col])
        half = int(np.ceil(1.6 * radius * scale_px)) + 2
        r0, r1 = max(0, row - half), min(size, row + half + 1)
        c0, c1 = max(0, col - half), min(size, col + half + 1)
        bu, bv = u[r0:r1, c0:c1], v[r0:r1, c0:c1]
        field_ = np.zeros(bu.shape, dtype=np.float32)
        # Several overlapping lobules make an irregular outline.
        for _lobe in range(5):
            ou, ov = rng.normal(0.0, 0.3 * radius, 2)
            width = radius * rng.uniform(0.55, 0.85)
            d2 = (bu - f32(cu + ou)) ** 2 + (bv - f32(cv + ov)) ** 2
            np.maximum(field_, np.exp(-d2 * f32(1.0 / (width * width))), out=field_)
        field_ *= f32(0.85) + f32(0.2) * patch[r0:r1, c0:c1]
        soft = _ramp(field_ - f32(0.45), 0.7)
        inside = lung[r0:r1, c0:c1]
        amplitude = f32(rng.uniform(0.32, 0.42))
        # Mottled rather than uniform: consolidation spares some air spaces.
        mottle = f32(0.8) + f32(0.2) * patch[r0:r1, c0:c1]
        np.maximum(added[r0:r1, c0:c1], soft * inside * mottle * amplitude,
                   out=added[r0:r1, c0:c1])
        mask[r0:r1, c0:c1] |= (field_ > 0.45) & (inside > 0.5)
    density += added
    return mask
