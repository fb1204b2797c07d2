"""Registration: putting spots on the right place of the image.

Spot centres (``SpotTable.obsm["spatial"]``, (x, y) pixels) and the image do
not always share one frame.  Three ways to bring them together, all giving a
:class:`Transform` (a 2-D affine map on (x, y) points):

* **scale factors / pixel sizes** — :meth:`Transform.from_pixel_sizes`
  (spots measured with one pixel size, image with another) or
  :meth:`Transform.scaling`;
* **a user affine** — :meth:`Transform.from_matrix` (2×3 or 3×3, e.g. from
  another registration tool);
* **landmarks** — 2 or more point pairs clicked on the image and on the
  spots: :func:`fit_landmarks` (2 pairs → similarity: rotation + uniform
  scale + shift; 3 or more → full affine; least squares, with residuals).

:func:`apply_transform` returns a new :class:`~napari_roiscore.spots.table.SpotTable`
with moved centres (raw counts untouched) and records the transform in
``provenance["transform"]`` (the total transform from the reader's
coordinates) and ``provenance["transform_steps"]`` (each step, in order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.spots.table import SpotTable

__all__ = ["Alignment", "Transform", "apply_transform", "fit_landmarks", "spots_to_image_pixels",
           "transform_of"]

#: how many landmark pairs each kind of fit needs
MIN_PAIRS = {"similarity": 2, "affine": 3}


@dataclass(frozen=True)
class Transform:
    """A 2-D affine transform of (x, y) points: ``[x', y', 1] = M @ [x, y, 1]``.

    Parameters
    ----------
    matrix : numpy.ndarray
        3×3 homogeneous matrix whose last row is ``(0, 0, 1)``.
    kind : str
        How it was made: ``"identity"``, ``"scale"``, ``"affine"``,
        ``"similarity"`` (from landmarks) or ``"composed"``.
    """

    matrix: np.ndarray
    kind: str = "affine"

    def __post_init__(self) -> None:
        m = np.asarray(self.matrix, dtype=np.float64)
        if m.shape == (2, 3):
            m = np.vstack([m, [0.0, 0.0, 1.0]])
        if m.shape != (3, 3) or not np.all(np.isfinite(m)):
            raise RoiScoreError(f"Transform matrix of shape {m.shape} (or with NaN/inf) is not a 2-D affine.",
                                "Give a 2×3 or 3×3 matrix of finite numbers acting on (x, y).")
        if not np.allclose(m[2], [0.0, 0.0, 1.0]):
            raise RoiScoreError(f"Transform matrix last row {m[2].tolist()} is not (0, 0, 1).",
                                "Give an affine matrix; perspective transforms are not supported.")
        if abs(np.linalg.det(m[:2, :2])) < 1e-12:
            raise RoiScoreError("Transform matrix is singular (it squashes the spots onto a line or a point).",
                                "Check the matrix or the landmarks.")
        m.setflags(write=False)
        object.__setattr__(self, "matrix", m)

    # -- constructors ---------------------------------------------------------------
    @classmethod
    def identity(cls) -> Transform:
        return cls(np.eye(3), "identity")

    @classmethod
    def scaling(cls, sx: float, sy: float | None = None) -> Transform:
        """Multiply x by ``sx`` and y by ``sy`` (default ``sx``), e.g. a Space Ranger scale factor."""
        sy = sx if sy is None else sy
        if not (sx > 0 and sy > 0):
            raise RoiScoreError(f"Scale factors must be positive, got ({sx}, {sy}).",
                                "Use e.g. tissue_hires_scalef from scalefactors_json.json.")
        return cls(np.diag([float(sx), float(sy), 1.0]), "scale")

    @classmethod
    def from_pixel_sizes(cls, from_um: float, to_um: float) -> Transform:
        """Pixels of ``from_um`` µm → pixels of ``to_um`` µm (scale ``from_um / to_um``)."""
        if not (from_um and to_um and from_um > 0 and to_um > 0):
            raise RoiScoreError(f"Pixel sizes must be positive, got {from_um} and {to_um} µm.",
                                "Set the spots' and the image's pixel size in micrometres.")
        return cls.scaling(from_um / to_um)

    @classmethod
    def from_matrix(cls, matrix) -> Transform:
        """A user affine (2×3 or 3×3) acting on (x, y)."""
        return cls(np.asarray(matrix, dtype=np.float64), "affine")

    @classmethod
    def similarity(cls, scale: float, rotation_deg: float, shift_xy: tuple[float, float]) -> Transform:
        """Rotate by ``rotation_deg`` (counter-clockwise in x→y), scale uniformly, then shift."""
        a = math.radians(rotation_deg)
        c, s = scale * math.cos(a), scale * math.sin(a)
        return cls(np.array([[c, -s, shift_xy[0]], [s, c, shift_xy[1]], [0, 0, 1]]), "similarity")

    # -- use --------------------------------------------------------------------------
    def apply(self, xy) -> np.ndarray:
        """Transform points of shape (n, 2) given as (x, y)."""
        p = np.asarray(xy, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 2:
            raise RoiScoreError(f"Points of shape {p.shape} are not (n, 2) (x, y) pairs.", "Pass an (n, 2) array.")
        return p @ self.matrix[:2, :2].T + self.matrix[:2, 2]

    def then(self, other: Transform) -> Transform:
        """This transform followed by ``other``."""
        return Transform(other.matrix @ self.matrix, "composed")

    def inverse(self) -> Transform:
        return Transform(np.linalg.inv(self.matrix), self.kind)

    @property
    def scale(self) -> float:
        """Area scale as a length factor: sqrt(|det|) (spot diameters scale by this)."""
        return float(math.sqrt(abs(np.linalg.det(self.matrix[:2, :2]))))

    @property
    def rotation_deg(self) -> float:
        """Rotation angle of the linear part (exact for similarities)."""
        return float(math.degrees(math.atan2(self.matrix[1, 0], self.matrix[0, 0])))

    @property
    def shift_xy(self) -> tuple[float, float]:
        return float(self.matrix[0, 2]), float(self.matrix[1, 2])

    @property
    def mirrored(self) -> bool:
        """The linear part flips the image (negative determinant)."""
        return bool(np.linalg.det(self.matrix[:2, :2]) < 0)

    @property
    def stretch(self) -> float:
        """How much more one direction is scaled than the other (1 for a similarity)."""
        sv = np.linalg.svd(self.matrix[:2, :2], compute_uv=False)
        return float(sv[0] / sv[1]) if sv[1] > 0 else math.inf

    def describe(self) -> str:
        """One line a user can read, e.g. ``rotation 2.0°, scale 1.010, shift (40.0, -25.0) px``."""
        sx, sy = self.shift_xy
        text = f"rotation {self.rotation_deg:.2f}°, scale {self.scale:.4f}, shift ({sx:.1f}, {sy:.1f}) px"
        if self.mirrored:
            text = "mirrored, " + text
        if self.stretch > 1.01:
            text += f", stretch/shear ×{self.stretch:.2f}"
        return text

    def to_dict(self) -> dict:
        """Plain, JSON-friendly form (stored in ``SpotTable.provenance``)."""
        return {"kind": self.kind, "matrix": self.matrix.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Transform:
        try:
            return cls(np.asarray(d["matrix"], dtype=np.float64), str(d.get("kind", "affine")))
        except (KeyError, TypeError, ValueError) as err:
            raise RoiScoreError(f"Stored transform {d!r} cannot be read ({err}).",
                                "Store {'kind': ..., 'matrix': 3×3 list}.") from None


@dataclass(frozen=True)
class Alignment:
    """A landmark fit: the transform and how well each pair lines up.

    Parameters
    ----------
    transform : Transform
        Maps the moving points (spots) onto the fixed points (image).
    moving, fixed : numpy.ndarray
        The landmark pairs, (n, 2) as (x, y).
    residuals : numpy.ndarray
        Distance (px, in the fixed frame) between each transformed moving
        landmark and its fixed partner.
    """

    transform: Transform
    moving: np.ndarray
    fixed: np.ndarray
    residuals: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def max_residual(self) -> float:
        return float(self.residuals.max()) if self.residuals.size else 0.0

    @property
    def rms_residual(self) -> float:
        return float(np.sqrt(np.mean(self.residuals ** 2))) if self.residuals.size else 0.0

    def to_dict(self) -> dict:
        return {**self.transform.to_dict(), "landmarks_moving_xy": self.moving.tolist(),
                "landmarks_fixed_xy": self.fixed.tolist(), "residuals_px": self.residuals.tolist()}


def _check_pairs(moving, fixed, kind: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        m = np.asarray(moving, dtype=np.float64)
        f = np.asarray(fixed, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise RoiScoreError(f"Landmarks are not (x, y) numbers ({err}).",
                            "Give each landmark as two numbers, e.g. [[120.5, 80.0], ...].") from None
    if m.ndim != 2 or m.shape[1] != 2 or f.shape != m.shape:
        raise RoiScoreError(
            f"Landmarks do not pair up: {m.shape[0] if m.ndim == 2 else m.shape} on the spots, "
            f"{f.shape[0] if f.ndim == 2 else f.shape} on the image.",
            "Click the same number of points on both landmark layers, in the same order.")
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(f))):
        raise RoiScoreError("Landmarks contain NaN/inf coordinates.", "Remove those points.")
    need = MIN_PAIRS[kind]
    if len(m) < need:
        raise RoiScoreError(f"A {kind} alignment needs at least {need} landmark pairs; got {len(m)}.",
                            f"Click {need - len(m)} more pair(s).")
    return m, f


#: affine landmarks must spread at least this much across their main direction (ratio of
#: the smaller to the larger singular value of the centred points)
MIN_TRIANGLE_SPREAD = 0.05
#: a fitted alignment that stretches one direction more than this is refused
MAX_STRETCH = 5.0


def _fit_similarity(m: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Least-squares x' = a x − b y + tx, y' = b x + a y + ty."""
    if np.ptp(m, axis=0).max() == 0 or np.ptp(f, axis=0).max() == 0:
        raise RoiScoreError("The landmarks on one layer all sit on the same spot.",
                            "Click landmarks far apart (e.g. opposite corners of the tissue).")
    n = len(m)
    A = np.zeros((2 * n, 4))
    A[0::2] = np.column_stack([m[:, 0], -m[:, 1], np.ones(n), np.zeros(n)])
    A[1::2] = np.column_stack([m[:, 1], m[:, 0], np.zeros(n), np.ones(n)])
    (a, b, tx, ty), *_ = np.linalg.lstsq(A, f.reshape(-1), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty], [0.0, 0.0, 1.0]])


def _fit_affine(m: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Least-squares full affine (6 parameters)."""
    A = np.column_stack([m, np.ones(len(m))])
    for pts, which in ((m, "spots"), (f, "image")):
        sv = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False)
        # exactly or nearly on one line: the fit would invent a huge stretch across it
        if sv[0] == 0 or sv[-1] / sv[0] < MIN_TRIANGLE_SPREAD:
            raise RoiScoreError(
                f"The landmarks on the {which} (almost) lie on one line; an affine fit needs a triangle.",
                "Click a third landmark well away from the line of the others, or use 2 pairs.")
    sol, *_ = np.linalg.lstsq(A, f, rcond=None)
    return np.vstack([sol.T, [0.0, 0.0, 1.0]])


def fit_landmarks(moving, fixed, kind: str | None = None) -> Alignment:
    """Fit the transform that maps ``moving`` landmarks (spots) onto ``fixed`` ones (image).

    Parameters
    ----------
    moving, fixed : array-like, shape (n, 2)
        Paired landmarks as (x, y), in the order they were clicked.
    kind : {"similarity", "affine"}, optional
        Default: similarity for 2 pairs, affine for 3 or more.

    Returns
    -------
    Alignment
        With per-pair residuals (zero for exactly determined fits).

    Raises
    ------
    RoiScoreError
        Unpaired, too few, coincident or collinear landmarks.
    """
    if kind is None:
        n = len(np.asarray(moving))
        kind = "similarity" if n < 3 else "affine"
    if kind not in MIN_PAIRS:
        raise RoiScoreError(f"Unknown alignment kind {kind!r}.", "Use 'similarity' or 'affine'.")
    m, f = _check_pairs(moving, fixed, kind)
    mat = _fit_similarity(m, f) if kind == "similarity" else _fit_affine(m, f)
    t = Transform(mat, kind)
    if t.stretch > MAX_STRETCH:
        raise RoiScoreError(
            f"The fitted alignment stretches one direction {t.stretch:.1f}× more than the other "
            f"({t.describe()}); spots and image are never distorted like that.",
            "Check that the pairs were clicked in the same order on both layers, and spread the "
            "landmarks over the tissue.")
    res = np.linalg.norm(t.apply(m) - f, axis=1)
    return Alignment(t, m, f, res)


def transform_of(spots: SpotTable) -> Transform:
    """The total transform already applied to ``spots`` (identity if none)."""
    d = spots.provenance.get("transform")
    return Transform.from_dict(d) if d else Transform.identity()


def apply_transform(spots: SpotTable, transform: Transform | Alignment,
                    pixel_size_um: float | None = None) -> SpotTable:
    """A new SpotTable with centres moved by ``transform``.

    Counts, genes and barcodes are shared with ``spots`` (never changed); the
    spot diameter is scaled by the transform's length scale.  The new table's
    ``provenance["transform"]`` is the total transform from the reader's
    coordinates (earlier steps composed with this one) and
    ``provenance["transform_steps"]`` lists each step.

    Parameters
    ----------
    pixel_size_um : float, optional
        Pixel size of the frame the spots land in (e.g. the image's);
        default: unchanged when the transform keeps the scale, else the old
        pixel size divided by the transform's scale.
    """
    import anndata as ad

    step = transform.to_dict()
    t = transform.transform if isinstance(transform, Alignment) else transform
    old = spots.adata
    xy = np.asarray(old.obsm["spatial"], dtype=np.float64).copy()
    xy[:, :2] = t.apply(xy[:, :2])
    obsm = {k: v for k, v in old.obsm.items()}
    obsm["spatial"] = xy
    # counts (X, layers) and gene table are shared, not copied: they do not change
    adata = ad.AnnData(X=old.X, obs=old.obs.copy(), var=old.var, uns=old.uns, obsm=obsm,
                       layers={k: v for k, v in old.layers.items()})
    if pixel_size_um is None and spots.pixel_size_um:
        pixel_size_um = spots.pixel_size_um / t.scale
    total = transform_of(spots).then(t)
    prov = dict(spots.provenance)
    prov["transform"] = {**total.to_dict(), "kind": "composed" if "transform" in spots.provenance else t.kind}
    prov["transform_steps"] = [*spots.provenance.get("transform_steps", []), step]
    return SpotTable(adata=adata, diameter_px=spots.diameter_px * t.scale, shape=spots.shape,
                     pixel_size_um=pixel_size_um, provenance=prov)


def spots_to_image_pixels(spots: SpotTable, image_pixel_size_um: float) -> SpotTable:
    """Rescale spots measured with ``spots.pixel_size_um`` to pixels of the image.

    Raises
    ------
    RoiScoreError
        When the spots' pixel size is unknown.
    """
    if not spots.pixel_size_um:
        raise RoiScoreError(f"{spots.provenance.get('path', 'spot table')}: the spots' pixel size is unknown.",
                            "Set it (µm per pixel) or align with landmarks instead.")
    t = Transform.from_pixel_sizes(spots.pixel_size_um, image_pixel_size_um)
    return apply_transform(spots, t, pixel_size_um=image_pixel_size_um)
