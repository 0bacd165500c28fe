"""Synthetic 2D medical images with exact ground truth: fundus, chest X-ray, dermoscopy, endoscopy, EM, OCT, CT slice.

Every generator takes ``(height, width)``, a numpy ``Generator`` and ``hard`` and returns a :class:`Image2DCase`:
the image in file order (rows first; ``uint8`` RGB or grey, ``int16`` Hounsfield units for CT) and binary or index
masks of the same size. What makes them look like the real data (DATASETS_2D.md, the issue's list):

- fundus: a circular field of view with dark surround, orange-red retina with macula and vignetting, a vessel
  tree of 1-8 px branches (distance-transform rendered, width tapering at each bifurcation) leaving the optic disc
  and crossing it, a disc with a blurred rim and a brighter cup inside it;
- chest X-ray: body and mediastinum, two lungs with diffuse borders and costophrenic angles, rib shadows across
  them, clavicles, a heart silhouette overlapping the (patient's) left lung, which the lung masks exclude as the
  Montgomery masks do;
- dermoscopy: skin with colour variation, a lesion with a fuzzy, irregular border and pigment network, hairs and a
  circular vignette;
- endoscopy: mucosa with vessels and light fall-off, a dark lumen, a polyp close to the mucosa's colour, shaded
  as a bump, specular highlights, the scope's black octagonal border;
- EM: Voronoi-like cells, membranes one to three pixels wide, organelles and mitochondria, blur and noise;
- OCT: retinal layers as bands bounded by smooth curves with a foveal pit, speckle, labels = layer indices;
- CT slice: body, fat, muscle, lungs with vessels, spine, table, Hounsfield units.

``hard`` makes boundaries ambiguous to intensity alone: lower contrast, overlapping intensity distributions
(opacities inside the lungs, pale lesion regions, organelles as dark as membranes), partial-volume rims and
stronger illumination gradients, so that no single intensity threshold solves a task
(``benchmarks/synthetic_2d.py`` measures it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

__all__ = ["Image2DCase", "GENERATORS_2D", "TARGETS_2D", "smooth2d", "fundus", "cxr", "dermoscopy",
           "endoscopy", "em", "oct", "ct_slice"]


@dataclass
class Image2DCase:
    """One synthetic image and its masks, rows first.

    Attributes:
        image: ``(H, W, 3)`` or ``(H, W)`` uint8, or ``(H, W)`` int16 (CT, HU).
        masks: name -> ``(H, W)`` uint8 mask (0/1, or layer indices for ``layers``).
        info: scalars describing the case (e.g. ``glaucoma``, the vertical cup-to-disc ratio).
    """

    image: np.ndarray
    masks: dict[str, np.ndarray]
    info: dict = field(default_factory=dict)


# the mask each task is scored on by the threshold baseline (benchmarks/synthetic_2d.py)
TARGETS_2D = {"fundus": "vessels", "cxr": "lungs", "dermoscopy": "lesion", "endoscopy": "polyp", "em": "membranes",
              "oct": "layers", "ct_slice": "lungs"}


def smooth2d(h: int, w: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-std random field varying over about ``scale`` pixels (float32, ``(h, w)``)."""
    ch, cw = max(int(np.ceil(h / scale)) + 3, 4), max(int(np.ceil(w / scale)) + 3, 4)
    noise = ndimage.gaussian_filter(rng.standard_normal((ch, cw)).astype(np.float32), 0.7, mode="wrap")
    f = F.interpolate(torch.from_numpy(noise)[None, None], size=(h, w), mode="bicubic", align_corners=True)[0, 0]
    f = f.numpy()
    return ((f - f.mean()) / (f.std() + 1e-6)).astype(np.float32)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]


def _blob(h, w, cy, cx, ry, rx, rng, rough=0.2, angle=0.0, lobes=6) -> np.ndarray:
    """Normalised radius of an irregular ellipse (``< 1`` inside): Fourier-perturbed in the polar angle."""
    y, x = _grid(h, w)
    dy, dx = y - cy, x - cx
    c, s = np.cos(angle), np.sin(angle)
    u, v = (c * dx + s * dy) / rx, (-s * dx + c * dy) / ry
    theta = np.arctan2(v, u)
    pert = np.zeros_like(theta)
    for k in range(2, 2 + lobes):
        pert += rng.normal(0, rough / k**0.8) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return np.sqrt(u**2 + v**2) / (1.0 + pert)


def _soft(r: np.ndarray, width: float) -> np.ndarray:
    """Soft inside-indicator of ``r < 1`` with a transition of about ``width`` (in units of ``r``)."""
    z = np.clip((r - 1.0) / np.maximum(width, 1e-3), -60.0, 60.0)
    return (1.0 / (1.0 + np.exp(z))).astype(np.float32)


def _u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _draw_paths(h: int, w: int, paths: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise centrelines (points ``(N, 2)`` as y, x; radius per point) -> (distance to the nearest centreline,
    radius of that centreline point), by one Euclidean distance transform."""
    radius = np.zeros((h, w), np.float32)
    centre = np.zeros((h, w), bool)
    for pts, rad in paths:
        iy, ix = np.round(pts[:, 0]).astype(int), np.round(pts[:, 1]).astype(int)
        ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
        iy, ix, r = iy[ok], ix[ok], rad[ok]
        np.maximum.at(radius, (iy, ix), r)
        centre[iy, ix] = True
    if not centre.any():
        return np.full((h, w), np.inf, np.float32), radius
    dist, (ny, nx) = ndimage.distance_transform_edt(~centre, return_indices=True)
    return dist.astype(np.float32), radius[ny, nx]


def _walk(start, direction, length, step, curl, rng) -> np.ndarray:
    """A smooth random curve: ``length`` px from ``start`` heading ``direction`` (radians), turning by ``curl``."""
    n = max(int(length / step), 2)
    turn = ndimage.gaussian_filter1d(rng.normal(0, curl, n), 3)
    ang = direction + np.cumsum(turn)
    pts = np.empty((n, 2), np.float32)
    pts[0] = start
    pts[1:, 0] = start[0] + np.cumsum(np.sin(ang[1:]) * step)
    pts[1:, 1] = start[1] + np.cumsum(np.cos(ang[1:]) * step)
    return pts


# ---------------------------------------------------------------------------------------------------------------
# fundus
# ---------------------------------------------------------------------------------------------------------------


def _vessel_tree(h, w, disc, scale, rng) -> list[tuple[np.ndarray, np.ndarray]]:
    """Arcades leaving the disc up and down (and nasal/temporal), branching with tapering widths 8 -> 1 px."""
    paths = []
    cy, cx = disc
    toward_macula = 1.0 if cx < w / 2 else -1.0
    stack = []
    for up in (-1, 1):
        for k in range(2):  # artery and vein of each arcade
            base = np.pi / 2 * up + toward_macula * rng.uniform(-0.1, 0.45) * (1 if k else -0.4)
            ang = np.arctan2(np.sin(base), np.cos(base) * toward_macula)
            start = np.array([cy + rng.normal(0, 3) * scale, cx + rng.normal(0, 3) * scale], np.float32)
            stack.append((start, ang, rng.uniform(3.2, 4.0) * scale, 0))
    for _ in range(2):  # nasal vessels
        ang = np.pi if toward_macula > 0 else 0.0
        stack.append((np.array([cy, cx], np.float32), ang + rng.normal(0, 0.5), rng.uniform(2.0, 2.8) * scale, 1))
    while stack:
        start, ang, radius, depth = stack.pop()
        length = rng.uniform(0.25, 0.45) * min(h, w) * (0.8**depth)
        pts = _walk(start, ang, length, 0.5, 0.018, rng)
        rad = np.linspace(radius, radius * 0.8, len(pts)).astype(np.float32)
        paths.append((pts, rad))
        if radius * 0.7 < 0.5 or depth > 6:
            continue
        for frac in rng.uniform(0.2, 0.95, size=3 if depth < 2 else 2 if depth < 4 else 1):
            i = int(frac * (len(pts) - 1))
            seg = pts[min(i + 1, len(pts) - 1)] - pts[max(i - 1, 0)]
            heading = np.arctan2(seg[0], seg[1])
            stack.append((pts[i].copy(), heading + rng.choice([-1, 1]) * rng.uniform(0.4, 1.1),
                          rad[i] * rng.uniform(0.5, 0.75), depth + 1))
        stack.append((pts[-1].copy(), np.arctan2(*(pts[-1] - pts[-2])), rad[-1] * 0.75, depth + 1))
    return paths


def fundus(h: int, w: int, rng: np.random.Generator, hard: bool = False, glaucoma: bool | None = None) -> Image2DCase:
    """Colour fundus photograph: ``vessels``, ``fov``, ``disc`` (including cup) and ``cup`` masks.

    ``glaucoma``: ``True`` draws a large cup (cup-to-disc ratio 0.6-0.8, as in glaucomatous discs), ``False`` a
    normal one (0.3-0.55), ``None`` either (0.3-0.75); the release writers pass the folder's class."""
    y, x = _grid(h, w)
    m = min(h, w)
    scale = m / 565.0  # DRIVE's vessel widths at DRIVE's size
    cy0, cx0 = h / 2, w / 2
    fov_r = 0.47 * m
    rr = np.sqrt((y - cy0) ** 2 + (x - cx0) ** 2)
    fov = rr < fov_r
    side = rng.choice([-1, 1])
    disc_c = (cy0 + rng.normal(0, 0.03) * m, cx0 + side * rng.uniform(0.22, 0.3) * m)
    disc_ry = rng.uniform(0.075, 0.09) * m
    disc_rx = disc_ry * rng.uniform(0.85, 0.98)
    r_disc = _blob(h, w, *disc_c, disc_ry, disc_rx, rng, rough=0.04)
    cdr = rng.uniform(*{None: (0.3, 0.75), True: (0.6, 0.8), False: (0.3, 0.55)}[glaucoma])
    r_cup = _blob(h, w, disc_c[0] + rng.normal(0, 0.05) * disc_ry, disc_c[1] + side * 0.1 * disc_rx,
                  disc_ry * cdr, disc_rx * cdr * rng.uniform(0.85, 1.0), rng, rough=0.08)
    disc, cup = r_disc < 1, (r_cup < 1) & (r_disc < 0.95)
    macula = (disc_c[0] + rng.normal(0, 0.02) * m, disc_c[1] - side * 0.34 * m)
    r_mac = np.sqrt((y - macula[0]) ** 2 + (x - macula[1]) ** 2) / (0.09 * m)

    illum = 1.0 - (0.55 if hard else 0.35) * (rr / fov_r) ** 2 + (0.18 if hard else 0.08) * smooth2d(h, w, m / 3, rng)
    texture = smooth2d(h, w, 6 * scale + 1, rng) * (0.06 if hard else 0.025) + smooth2d(h, w, m / 8, rng) * 0.05
    base = np.array([rng.uniform(150, 200), rng.uniform(70, 95), rng.uniform(25, 45)], np.float32)
    img = base[None, None, :] * (illum + texture)[..., None]
    img *= (1.0 - 0.35 * np.exp(-(r_mac**2)))[..., None]  # the darker macula
    rim_w = (0.12 if hard else 0.06)
    disc_soft, cup_soft = _soft(r_disc, rim_w), _soft(r_cup, 0.15 if hard else 0.1) * (r_disc < 0.97)
    disc_col = np.array([235, 190, 120], np.float32) * (0.8 if hard else 1.0)
    img = img * (1 - disc_soft[..., None]) + disc_col * (illum[..., None] * 0.6 + 0.4) * disc_soft[..., None]
    img += cup_soft[..., None] * np.array([20, 35, 40], np.float32) * (0.6 if hard else 1.0)

    dist, radius = _draw_paths(h, w, _vessel_tree(h, w, disc_c, scale, rng))
    profile = np.clip(1.0 - dist / np.maximum(radius, 0.5), 0.0, 1.0)
    vessels = (dist <= np.maximum(radius - 0.5, 0.0)) | ((dist < 0.5) & (radius > 0))  # centreline + half width
    strength = np.clip(radius / (2.0 * scale), 0.5, 1.0) * profile ** (0.5 if hard else 0.8)
    contrast = np.array([0.45, 0.7, 0.55], np.float32) * (0.45 if hard else 1.0)
    img *= 1.0 - strength[..., None] * contrast
    img = ndimage.gaussian_filter(img, sigma=(0.6 * scale + 0.3, 0.6 * scale + 0.3, 0))
    img += rng.normal(0, 5.0 if hard else 2.5, img.shape).astype(np.float32)
    img *= (ndimage.gaussian_filter(fov.astype(np.float32), 1.0) > 0.5)[..., None]
    vessels &= fov
    rows = np.nonzero(disc.any(1))[0]
    crow = np.nonzero(cup.any(1))[0]
    vcdr = float(len(crow) / len(rows)) if len(rows) and len(crow) else 0.0
    return Image2DCase(_u8(img), {"vessels": vessels.astype(np.uint8), "fov": fov.astype(np.uint8),
                                  "disc": disc.astype(np.uint8), "cup": cup.astype(np.uint8)},
                       {"vcdr": vcdr, "glaucoma": int(cdr > 0.6)})


# ---------------------------------------------------------------------------------------------------------------
# chest X-ray
# ---------------------------------------------------------------------------------------------------------------


def cxr(h: int, w: int, rng: np.random.Generator, hard: bool = False) -> Image2DCase:
    """PA chest radiograph (grey, lungs dark): ``lungs``, ``left`` and ``right`` masks (patient's sides: the
    patient's left lung is on the image's right)."""
    y, x = _grid(h, w)
    yn, xn = y / h, x / w
    body = _soft(_blob(h, w, 0.55 * h, 0.5 * w, 0.62 * h, 0.47 * w, rng, rough=0.02), 0.03)
    img = 0.25 + 0.45 * body
    img += 0.35 * np.exp(-(((xn - 0.5) / 0.07) ** 2)) * body  # mediastinum and spine
    lungs = {}
    lung_soft = np.zeros((h, w), np.float32)
    heart_r = _blob(h, w, 0.66 * h, (0.56 + rng.uniform(-0.02, 0.03)) * w, 0.15 * h, rng.uniform(0.14, 0.19) * w,
                    rng, rough=0.05)
    heart = heart_r < 1
    for name, cx in (("right", 0.3), ("left", 0.7)):  # patient's right lung on the image's left
        cx_ = cx + rng.normal(0, 0.01)
        r = _blob(h, w, 0.47 * h, cx_ * w, 0.27 * h, 0.15 * w, rng, rough=0.06, angle=0.0)
        top = yn < 0.47 - 0.2  # apex: narrower
        r = np.where(top, r * (1 + 1.5 * (0.27 - yn) * (top)), r)
        bottom = yn > 0.62  # costophrenic angle: sharp lateral corner, dome medially
        dome = 0.64 + 0.12 * np.clip(np.abs(xn - cx_) / 0.15, 0, 1) ** 2  # diaphragm dome, costophrenic angles
        r = np.where(bottom & (yn > dome - 0.01), np.maximum(r, 1.0 + (yn - dome) / 0.01), r)  # soft dome edge
        inside = r < 1
        if name == "left":
            inside &= ~heart
        lungs[name] = inside
        lung_soft = np.maximum(lung_soft, _soft(r, 0.08 if hard else 0.04) * (1 - _soft(heart_r, 0.05)))
    contrast = 0.22 if hard else 0.42
    img -= contrast * lung_soft * (1 + (0.25 if hard else 0.1) * smooth2d(h, w, h / 10, rng))
    img += (0.22 if hard else 0.12) * _soft(heart_r, 0.08) * body
    period = rng.uniform(0.075, 0.09) * h
    for cx in (0.3, 0.7):  # ribs: curved bright bands over each lung
        t = np.abs(x - 0.5 * w) / w  # distance from the spine
        curve = y + 0.25 * h * t - 1.4 * h * t**2  # posterior ribs leave the spine, then arch down laterally
        band = np.cos(np.pi * (curve / period)) ** 10
        side = _soft(np.abs(xn - cx) / 0.2, 0.1) * (yn > 0.15) * (yn < 0.75)
        img += (0.16 if hard else 0.09) * band * side
    clav = np.exp(-(((yn - 0.17 - 0.25 * np.abs(xn - 0.5)) / 0.012) ** 2)) * (np.abs(xn - 0.5) < 0.3)
    img += 0.15 * clav
    img += 0.05 * smooth2d(h, w, h / 30, rng) + (0.12 if hard else 0.04) * (yn - 0.5)
    img = ndimage.gaussian_filter(img, max(h / 600, 0.5))
    img += rng.normal(0, 0.025 if hard else 0.012, img.shape).astype(np.float32)
    lungs_all = lungs["left"] | lungs["right"]
    return Image2DCase(_u8(img * 255), {"lungs": lungs_all.astype(np.uint8), "left": lungs["left"].astype(np.uint8),
                                        "right": lungs["right"].astype(np.uint8)})


# ---------------------------------------------------------------------------------------------------------------
# dermoscopy
# ---------------------------------------------------------------------------------------------------------------


def _hairs(h, w, n, rng, width) -> np.ndarray:
    paths = []
    for _ in range(n):
        start = np.array([rng.uniform(0, h), rng.uniform(0, w)], np.float32)
        pts = _walk(start, rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.9) * max(h, w), 1.0, 0.01, rng)
        paths.append((pts, np.full(len(pts), width * rng.uniform(0.6, 1.4), np.float32)))
    dist, rad = _draw_paths(h, w, paths)
    return np.clip(1.2 - dist / np.maximum(rad, 0.5), 0, 1)


def dermoscopy(h: int, w: int, rng: np.random.Generator, hard: bool = False) -> Image2DCase:
    """Dermoscopic image of a pigmented lesion: ``lesion`` mask."""
    y, x = _grid(h, w)
    m = min(h, w)
    skin = np.array([rng.uniform(190, 230), rng.uniform(140, 175), rng.uniform(120, 150)], np.float32)
    img = skin * (1 + 0.05 * smooth2d(h, w, m / 6, rng))[..., None]
    img *= (1 + 0.03 * smooth2d(h, w, 3, rng))[..., None]
    r = _blob(h, w, h / 2 + rng.normal(0, 0.06) * h, w / 2 + rng.normal(0, 0.06) * w, rng.uniform(0.18, 0.33) * m,
              rng.uniform(0.18, 0.33) * m, rng, rough=0.3, angle=rng.uniform(0, np.pi), lobes=8)
    lesion = r < 1
    fuzz = (0.05 + 0.1 * (smooth2d(h, w, m / 5, rng) > 0)) * (2.0 if hard else 1.0)
    inside = _soft(r, fuzz)
    dark = rng.uniform(0.35, 0.6) * (0.6 if hard else 1.0)
    pig = np.array([0.55, 0.75, 0.85], np.float32)  # brown: red survives most
    network = np.clip(np.sin(x / rng.uniform(3, 6)) * np.sin(y / rng.uniform(3, 6)), 0, 1) ** 2
    var = smooth2d(h, w, m / 10, rng)
    # pale (regression) areas inside the lesion
    regress = ndimage.gaussian_filter((var > (0.5 if hard else 1.2)).astype(np.float32), 2.0)
    depth = dark * (1 + 0.35 * var + 0.4 * network) * (1 - 0.75 * regress)
    img *= 1 - np.clip(inside * depth, 0, 0.9)[..., None] * pig
    if hard:  # freckles and dark skin patches outside the lesion
        freckles = ndimage.gaussian_filter(((smooth2d(h, w, m / 20, rng) > 1.6) & ~lesion).astype(np.float32), 2.0)
        img *= 1 - (0.3 * freckles)[..., None] * pig
    img *= 1 - 0.55 * _hairs(h, w, int(rng.integers(0, 5 if hard else 3)) + 1, rng, 1.2 * m / 500 + 0.6)[..., None]
    rr = np.sqrt((y - h / 2) ** 2 + (x - w / 2) ** 2) / (0.5 * np.hypot(h, w))
    img *= (1 - (0.8 if hard else 0.45) * np.clip(rr - (0.55 if hard else 0.75), 0, 1) / 0.3)[..., None]
    img = ndimage.gaussian_filter(img, (0.8, 0.8, 0)) + rng.normal(0, 3.0, img.shape).astype(np.float32)
    return Image2DCase(_u8(img), {"lesion": lesion.astype(np.uint8)})


# ---------------------------------------------------------------------------------------------------------------
# endoscopy
# ---------------------------------------------------------------------------------------------------------------


def endoscopy(h: int, w: int, rng: np.random.Generator, hard: bool = False) -> Image2DCase:
    """Colonoscopy frame with a polyp: ``polyp`` mask."""
    y, x = _grid(h, w)
    m = min(h, w)
    lumen = (rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w)
    dl = np.sqrt((y - lumen[0]) ** 2 + (x - lumen[1]) ** 2) / m
    light = np.clip(0.25 + 0.9 * dl, 0.15, 1.0) * (1 + 0.1 * smooth2d(h, w, m / 4, rng))
    mucosa = np.array([rng.uniform(200, 235), rng.uniform(110, 140), rng.uniform(90, 115)], np.float32)
    folds = 0.12 * np.cos(dl * rng.uniform(18, 30) + smooth2d(h, w, m / 5, rng))
    img = mucosa * (light * (1 + folds))[..., None]
    dist, rad = _draw_paths(h, w, [(_walk(np.array([rng.uniform(0, h), rng.uniform(0, w)]), rng.uniform(0, 6.3),
                                          m * 0.5, 1.0, 0.06, rng), np.full(int(m * 0.5), 1.2, np.float32))
                                   for _ in range(6)])
    img *= 1 - (0.15 * np.clip(1 - dist / np.maximum(rad, 0.5), 0, 1))[..., None] * np.array([0.2, 1, 1])
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    ry, rx = rng.uniform(0.1, 0.22) * m, rng.uniform(0.1, 0.22) * m
    r = _blob(h, w, cy, cx, ry, rx, rng, rough=0.1)
    polyp = r < 1
    bump = np.sqrt(np.clip(1 - r**2, 0, 1))
    gy, gx = np.gradient(bump)
    shade = 1 + (0.5 if hard else 0.8) * (-gy - gx) * m / 20
    tint = np.array([1.0, rng.uniform(0.85, 0.95), rng.uniform(0.85, 1.0)], np.float32)
    if hard:
        tint = 1 + (tint - 1) * 0.3
    soft_p = _soft(r, 0.08 if hard else 0.04)
    img = img * (1 - soft_p[..., None]) + img * soft_p[..., None] * tint * shade[..., None] * (1.0 if hard else 1.1)
    # specular highlights: a few small ones on the mucosal folds, a cluster at the top of the polyp's dome
    spec = ((smooth2d(h, w, m / 60, rng) > 2.9) & (folds > 0.06)) | ((bump > 0.85) & (smooth2d(h, w, 3, rng) > 1.8))
    alpha = np.clip(ndimage.gaussian_filter(spec.astype(np.float32), 1.0) * 1.5, 0, 1)[..., None]
    img = img * (1 - alpha) + 250.0 * alpha
    ay, ax = np.abs(y - h / 2) / (h / 2), np.abs(x - w / 2) / (w / 2)
    frame = (ay + ax < 1.75) & (ay < 0.98) & (ax < 0.98)
    img = ndimage.gaussian_filter(img, (0.7, 0.7, 0)) + rng.normal(0, 3.0 if hard else 2.0, img.shape)
    img *= frame[..., None]
    return Image2DCase(_u8(img), {"polyp": (polyp & frame).astype(np.uint8)})


# ---------------------------------------------------------------------------------------------------------------
# electron microscopy
# ---------------------------------------------------------------------------------------------------------------


def em(h: int, w: int, rng: np.random.Generator, hard: bool = False) -> Image2DCase:
    """Serial-section TEM of neural tissue: ``membranes`` mask (1 px to 3 px wide)."""
    n_cells = max(int(h * w / rng.uniform(1500, 3000)), 4)
    seeds = np.zeros((h, w), bool)
    seeds[rng.integers(0, h, n_cells), rng.integers(0, w, n_cells)] = True
    # warp the coordinates so cell walls curve
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    wy, wx = y + 6 * smooth2d(h, w, 25, rng), x + 6 * smooth2d(h, w, 25, rng)
    _, (ny, nx) = ndimage.distance_transform_edt(~seeds, return_indices=True)
    cells = ndimage.map_coordinates((ny * w + nx).astype(np.float64), [wy, wx], order=0, mode="nearest")
    boundary = np.zeros((h, w), bool)
    boundary[:-1] |= cells[:-1] != cells[1:]
    boundary[:, :-1] |= cells[:, :-1] != cells[:, 1:]
    thick = smooth2d(h, w, 20, rng)
    membranes = boundary | (ndimage.binary_dilation(boundary) & (thick > 0.0))
    membranes |= ndimage.binary_dilation(boundary, iterations=1) & (thick > 0.9)  # up to 3 px
    img = 175 + 20 * smooth2d(h, w, 40, rng) + 12 * smooth2d(h, w, 3, rng)
    img -= (90 if not hard else 55) * ndimage.gaussian_filter(membranes.astype(np.float32), 0.6)
    n_org = int(n_cells * (4 if hard else 1.5))
    org = np.zeros((h, w), np.float32)
    oy, ox = rng.integers(0, h, n_org), rng.integers(0, w, n_org)
    org[oy, ox] = 1
    org = ndimage.gaussian_filter(org, rng.uniform(1.5, 2.5)) * 40
    img -= (70 if hard else 45) * np.clip(org, 0, 1)
    mito = _draw_paths(h, w, [(_walk(np.array([rng.uniform(0, h), rng.uniform(0, w)]), rng.uniform(0, 6.3), 12, 1.0,
                                     0.1, rng), np.full(12, 2.5, np.float32)) for _ in range(n_cells // 3)])
    img -= (55 if hard else 35) * np.clip(1.3 - mito[0] / np.maximum(mito[1], 0.5), 0, 1)
    img = ndimage.gaussian_filter(img, 0.8 if hard else 0.6) + rng.normal(0, 12 if hard else 6, (h, w))
    return Image2DCase(_u8(img), {"membranes": membranes.astype(np.uint8)})


# ---------------------------------------------------------------------------------------------------------------
# OCT
# ---------------------------------------------------------------------------------------------------------------

OCT_LAYERS = ("vitreous", "RNFL", "GCL+IPL", "INL", "OPL", "ONL", "IS/OS", "RPE", "choroid")


def oct(h: int, w: int, rng: np.random.Generator, hard: bool = False) -> Image2DCase:
    """Retinal OCT B-scan: ``layers`` = layer index per pixel (0 vitreous ... 8 choroid, :data:`OCT_LAYERS`)."""
    x = np.arange(w, dtype=np.float32)
    top = 0.3 * h + 0.06 * h * np.sin(x / w * np.pi * rng.uniform(0.5, 1.5) + rng.uniform(0, 6))
    fovea = rng.uniform(0.35, 0.65) * w
    pit = np.exp(-(((x - fovea) / (0.08 * w)) ** 2))
    thick = np.array([0.035, 0.07, 0.035, 0.03, 0.08, 0.025, 0.03], np.float32) * h
    bounds = [top + 0.03 * h * pit]
    for i, t in enumerate(thick):
        shrink = 1 - (0.85 if i < 4 else 0.1) * pit
        wob = 1 + 0.08 * ndimage.gaussian_filter1d(rng.normal(0, 1, w), w / 20) * 3
        bounds.append(bounds[-1] + t * shrink * wob)
    rows = np.arange(h, dtype=np.float32)[:, None]
    layers = np.zeros((h, w), np.uint8)
    for b in bounds:
        layers += (rows >= b[None, :]).astype(np.uint8)
    refl = np.array([0.05, 0.85, 0.55, 0.25, 0.6, 0.2, 0.9, 1.0, 0.45], np.float32)
    if hard:
        refl = np.array([0.1, 0.6, 0.5, 0.4, 0.5, 0.35, 0.65, 0.7, 0.5], np.float32)
    img = refl[layers]
    img = ndimage.gaussian_filter(img, (1.5 if hard else 0.8, 0.5))
    img *= rng.gamma(2.0 if hard else 4.0, 1 / (2.0 if hard else 4.0), img.shape)  # speckle
    img = np.log1p(12 * np.clip(img, 0, None)) / np.log1p(12 * 1.6)
    return Image2DCase(_u8(img * 255 + rng.normal(0, 4, img.shape)), {"layers": layers})


# ---------------------------------------------------------------------------------------------------------------
# CT slice
# ---------------------------------------------------------------------------------------------------------------


def ct_slice(h: int, w: int, rng: np.random.Generator, hard: bool = False) -> Image2DCase:
    """Axial chest CT slice in HU (int16): ``lungs`` mask."""
    y, x = _grid(h, w)
    hu = np.full((h, w), -1000.0, np.float32)
    body_r = _blob(h, w, 0.52 * h, 0.5 * w, 0.33 * h, 0.44 * w, rng, rough=0.03)
    body = body_r < 1
    hu[body] = -100 + 10 * rng.normal()  # subcutaneous fat
    muscle = body_r < 0.9
    hu[muscle] = 40
    lungs = np.zeros((h, w), bool)
    for cx in (0.32, 0.68):
        r = _blob(h, w, 0.5 * h, cx * w, 0.25 * h, 0.15 * w, rng, rough=0.08)
        lungs |= r < 1
    heart = _blob(h, w, 0.55 * h, 0.55 * w, 0.12 * h, 0.12 * w, rng, rough=0.05) < 1
    lungs &= ~heart
    hu[lungs] = -860 + 40 * smooth2d(h, w, h / 8, rng)[lungs]
    hu[heart] = 45
    spine = _blob(h, w, 0.77 * h, 0.5 * w, 0.06 * h, 0.05 * w, rng, rough=0.03) < 1
    hu[spine] = 700
    vessels = _draw_paths(h, w, [(_walk(np.array([0.5 * h, 0.5 * w]), rng.uniform(0, 6.3), 0.2 * h, 1.0, 0.1, rng),
                                  np.full(int(0.2 * h), 1.5, np.float32)) for _ in range(12)])
    vmask = (vessels[0] <= vessels[1]) & lungs
    hu[vmask] = 30
    if hard:  # consolidation and ground-glass opacities: lung with soft-tissue density
        opac = (smooth2d(h, w, h / 10, rng) > -0.1) & lungs
        hu[opac] = -150 + 120 * smooth2d(h, w, h / 20, rng)[opac]
    hu[int(0.9 * h):int(0.93 * h), :] = 200  # the table
    hu = ndimage.gaussian_filter(hu, 1.0 if hard else 0.7)
    hu += rng.normal(0, 60 if hard else 20, hu.shape)
    return Image2DCase(np.clip(np.round(hu), -1024, 3071).astype(np.int16), {"lungs": lungs.astype(np.uint8)})


GENERATORS_2D: dict[str, Callable[..., Image2DCase]] = {
    "fundus": fundus,
    "cxr": cxr,
    "dermoscopy": dermoscopy,
    "endoscopy": endoscopy,
    "em": em,
    "oct": oct,
    "ct_slice": ct_slice,
}


def _features(image) -> list[np.ndarray]:
    """Grey value and, for colour images, each channel: what a single threshold can be put on. A list or tuple of
    arrays (the modalities of a 3D case) is taken as the features themselves."""
    if isinstance(image, list | tuple):
        return [np.asarray(f, dtype=np.float32) for f in image]
    img = image.astype(np.float32)
    if img.ndim == 2:
        return [img]
    return [img.mean(-1), img[..., 0], img[..., 1], img[..., 2]]


def threshold_baseline(images: list[np.ndarray], masks: list[np.ndarray], levels: int = 128) -> dict:
    """Best single-threshold Dice over a set of images: one global threshold (and polarity, and channel or grey
    value; for 3D cases pass each image as a list of modality volumes) for every image, chosen to maximise the
    mean per-image Dice. Images whose mask is empty are left out (nnU-Net's NaN). Masks with several labels (OCT
    layers) are scored per label, each with its own threshold, and averaged.

    Returns:
        ``{"dice": best mean Dice, "feature": index (0 grey, 1-3 channels), "polarity": ">=" or "<=",
        "threshold": value}`` (per label for label maps: ``{"dice": mean, "per_label": {...}}``).
    """
    keep = [i for i, m in enumerate(masks) if np.any(m)]  # an image without the target scores NaN: skipped
    images, masks = [images[i] for i in keep], [masks[i] for i in keep]
    if not masks:
        return {"dice": float("nan")}
    labels = sorted(set(np.unique(np.concatenate([m.ravel() for m in masks])).tolist()) - {0})
    if len(labels) > 1:
        per = {int(lab): threshold_baseline(images, [(m == lab).astype(np.uint8) for m in masks], levels)
               for lab in labels}
        return {"dice": float(np.mean([p["dice"] for p in per.values()])), "per_label": per}
    feats = [_features(im) for im in images]
    best = {"dice": -1.0}
    for f in range(len(feats[0])):
        pooled = np.concatenate([fe[f].ravel()[:: max(fe[f].size // 20000, 1)] for fe in feats])
        # candidate thresholds: quantiles (dense where most pixels are) and an even grid (dense where a small
        # target's intensities are, e.g. a tumour in a volume that is mostly background)
        edges = np.unique(np.concatenate([np.quantile(pooled, np.linspace(0, 1, levels + 1)),
                                          np.linspace(pooled.min(), pooled.max(), 2 * levels + 1)]))
        for pol in (">=", "<="):
            dices = []
            for fe, m in zip(feats, masks):
                v, g = fe[f].ravel(), m.ravel() > 0
                idx = np.searchsorted(edges, v, side="right")  # bin of each pixel
                n_all = np.bincount(idx, minlength=len(edges) + 1).astype(np.float64)
                n_fg = np.bincount(idx[g], minlength=len(edges) + 1).astype(np.float64)
                if pol == ">=":  # pred = v >= edges[k]  <=>  idx > k
                    p, tp = np.cumsum(n_all[::-1])[::-1][1:], np.cumsum(n_fg[::-1])[::-1][1:]
                else:  # pred = v < edges[k]  <=>  idx <= k
                    p, tp = np.cumsum(n_all)[:-1], np.cumsum(n_fg)[:-1]
                dices.append(2 * tp / np.maximum(p + g.sum(), 1))
            mean = np.mean(dices, axis=0)
            k = int(np.argmax(mean))
            if mean[k] > best["dice"]:
                best = {"dice": float(mean[k]), "feature": f, "polarity": pol, "threshold": float(edges[k])}
    return best
