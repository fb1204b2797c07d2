"""A corpus of bad inputs, generated here, for every file the core opens.

Each *rejected* case must raise exactly :class:`RoiScoreError` (never another
exception type, never a hang) whose message names the file or field and
carries a ``Fix:`` text.  Each *accepted* case (messy but usable input) must
give its documented result.  See ``docs/robustness.md``.
"""

from __future__ import annotations

import json
import signal
import struct
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import tifffile
from shapely.geometry import MultiPolygon, Polygon

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.multiplex import MultiplexImage, read_multiplex_tiff, spots_on_image
from napari_roiscore.images.markers import marker_mask
from napari_roiscore.images.spot_footprints import footprint_fractions
from napari_roiscore.rois.roi import Roi
from napari_roiscore.rois.geojson import parse_geojson, read_geojson
from napari_roiscore.rois.shapes import rois_from_shapes
from napari_roiscore.scoring.methods import score_spots
from napari_roiscore.scoring.signature import Signature, match_genes
from napari_roiscore.scoring.signature_files import load_signatures
from napari_roiscore.spots.table import SpotTable, read_h5ad_spots
from bad_files import huge_tiff_header, write_sparse_pyramid
from tenx_fixtures import write_10x_h5, write_json

TIMEOUT_S = 30


@pytest.fixture(autouse=True)
def _no_hang():
    """Fail (instead of hanging the run) when one input takes longer than TIMEOUT_S."""

    def alarm(signum, frame):
        raise TimeoutError(f"bad input took longer than {TIMEOUT_S} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(TIMEOUT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------------------
# builders of valid inputs, broken below
# ---------------------------------------------------------------------------
def _adata(n: int = 20, g: int = 8, X=None) -> ad.AnnData:
    """A small raw-count AnnData with spot centres (``X`` replaces the counts)."""
    rng = np.random.default_rng(0)
    a = ad.AnnData(
        X=rng.poisson(2.0, (n, g)).astype(np.float32) if X is None else X,
        obs=pd.DataFrame(index=[f"AAAC-{i}" for i in range(n)]),
        var=pd.DataFrame(index=[f"GENE{j}" for j in range(g)]),
    )
    a.obsm["spatial"] = rng.uniform(0, 1000, (n, 2))
    a.uns["spatial"] = {"lib": {"scalefactors": {"spot_diameter_fullres": 55.0}}}
    return a


def _h5ad(tmp: Path, edit: Callable[[ad.AnnData], object] | None = None, name: str = "spots.h5ad") -> Path:
    a = _adata()
    if edit is not None:
        edited = edit(a)
        a = edited if isinstance(edited, ad.AnnData) else a
    p = tmp / name
    a.write_h5ad(p)
    return p


def _tiff(tmp: Path, name: str = "slide.ome.tif", data: np.ndarray | None = None) -> Path:
    p = tmp / name
    data = np.zeros((2, 64, 64), np.uint8) if data is None else data
    tifffile.imwrite(p, data, ome=True, metadata={"axes": "CYX"[-data.ndim:] if data.ndim <= 3 else None})
    return p


def _sig_file(tmp: Path, name: str, text: str | bytes) -> Path:
    p = tmp / name
    (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)
    return p


def _geojson_file(tmp: Path, obj: object, name: str = "rois.geojson") -> Path:
    p = tmp / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


def _feature(coords: object, gtype: str = "Polygon", **props) -> dict:
    return {"type": "Feature", "geometry": {"type": gtype, "coordinates": coords},
            "properties": {"objectType": "annotation", **props}}


SQUARE = [[[0, 0], [100, 0], [100, 100], [0, 100], [0, 0]]]


def _deep_list(depth: int) -> list:
    x: list = []
    for _ in range(depth):
        x = [x]
    return x


def _visium(tmp: Path) -> Path:
    """A minimal valid Space Ranger ``outs`` folder (3 spots x 2 genes)."""
    outs = tmp / "outs"
    (outs / "spatial").mkdir(parents=True)
    bcs = ["AAAC-1", "AAAG-1", "AAAT-1"]
    write_10x_h5(outs / "filtered_feature_bc_matrix.h5", np.array([[1, 0], [2, 3], [0, 1]]), bcs,
                 ["ENSG1", "ENSG2"], ["CD68", "CD163"])
    pos = pd.DataFrame({"barcode": bcs, "in_tissue": 1, "array_row": [0, 1, 2], "array_col": [0, 1, 2],
                        "pxl_row_in_fullres": [10, 20, 30], "pxl_col_in_fullres": [10, 20, 30]})
    pos.to_csv(outs / "spatial" / "tissue_positions.csv", index=False)
    write_json(outs / "spatial" / "scalefactors_json.json",
               {"spot_diameter_fullres": 20.0, "tissue_hires_scalef": 0.5, "tissue_lowres_scalef": 0.1})
    return outs


def _spots(xy: np.ndarray) -> SpotTable:
    a = _adata(n=len(xy))
    a.obsm["spatial"] = np.asarray(xy, dtype=float)
    return SpotTable(a, diameter_px=10.0, provenance={"path": "spots.h5ad"})


def _image(shape_yx=(100, 100)) -> MultiplexImage:
    import dask.array as da

    return MultiplexImage([da.ones((1, *shape_yx), dtype=np.uint8, chunks=(1, 64, 64))], ["CD68"],
                          provenance={"path": "slide.ome.tif"})


# ---------------------------------------------------------------------------
# the corpus of rejected inputs
# ---------------------------------------------------------------------------
@dataclass
class Bad:
    """A call on bad input, and what its error message must mention."""

    call: Callable[[], object]
    mentions: tuple[str, ...]


REJECTED: dict[str, Callable[[Path], Bad]] = {}


def rejected(name: str):
    def register(fn: Callable[[Path], Bad]) -> Callable[[Path], Bad]:
        assert name not in REJECTED, name
        REJECTED[name] = fn
        return fn
    return register


def _reads(reader: Callable[[Path], object], path: Path, *extra: str) -> Bad:
    return Bad(lambda: reader(path), (path.name, *extra))


# -- TIFF -------------------------------------------------------------------
@rejected("tiff: missing file")
def _(t): return _reads(read_multiplex_tiff, t / "nope.ome.tif")
@rejected("tiff: empty file")
def _(t): return _reads(read_multiplex_tiff, _sig_file(t, "empty.ome.tif", b""))
@rejected("tiff: directory instead of file")
def _(t): p = t / "dir.ome.tif"; p.mkdir(); return _reads(read_multiplex_tiff, p)
@rejected("tiff: random bytes")
def _(t): return _reads(read_multiplex_tiff, _sig_file(t, "noise.tif", np.random.default_rng(1).bytes(4096)))
@rejected("tiff: text with .tif extension")
def _(t): return _reads(read_multiplex_tiff, _sig_file(t, "notes.tif", "this is not an image\n" * 50))
@rejected("tiff: PNG with .tif extension")
def _(t): return _reads(read_multiplex_tiff, _sig_file(t, "png.tif", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200))
@rejected("tiff: truncated after 16 bytes")
def _(t):
    p = _tiff(t); p.write_bytes(p.read_bytes()[:16]); return _reads(read_multiplex_tiff, p)
@rejected("tiff: truncated header and IFD")
def _(t):
    p = _tiff(t); p.write_bytes(p.read_bytes()[:9]); return _reads(read_multiplex_tiff, p)
@rejected("tiff: IFD offset beyond end of file")
def _(t): return _reads(read_multiplex_tiff, _sig_file(t, "badifd.tif", b"II*\x00" + struct.pack("<I", 10**9)))
@rejected("tiff: big-endian magic, garbage IFD")
def _(t): return _reads(read_multiplex_tiff, _sig_file(t, "mm.tif", b"MM\x00*" + b"\xff" * 60))
@rejected("tiff: declares 10^6 x 10^6 pixels")
def _(t): return _reads(read_multiplex_tiff, huge_tiff_header(t / "huge.tif"), "declares")
@rejected("tiff: declares 0 x 0 pixels")
def _(t): return _reads(read_multiplex_tiff, huge_tiff_header(t / "zero.tif", 0, 0))
@rejected("tiff: 1-D image (wrong dimensions)")
def _(t):
    p = t / "line.tif"; tifffile.imwrite(p, np.zeros(64, np.uint8), metadata={"axes": "X"})
    return _reads(read_multiplex_tiff, p)
@rejected("tiff: pixel data truncated (strips beyond end)")
def _(t):
    p = t / "cut.tif"; tifffile.imwrite(p, np.arange(256 * 256, dtype=np.uint16).reshape(256, 256))
    b = p.read_bytes(); ifd = struct.unpack("<I", b[4:8])[0]
    # keep header and IFD (written first by tifffile? no: data first) -> cut the pixel bytes only
    p.write_bytes(b[:ifd] if ifd > 1000 else b[: len(b) // 3]); return _reads(read_multiplex_tiff, p)


# -- h5ad -------------------------------------------------------------------
def _edit(fn: Callable[[ad.AnnData], object]) -> Callable[[ad.AnnData], object]:
    return fn


@rejected("h5ad: missing file")
def _(t): return _reads(read_h5ad_spots, t / "nope.h5ad")
@rejected("h5ad: empty file")
def _(t): return _reads(read_h5ad_spots, _sig_file(t, "empty.h5ad", b""))
@rejected("h5ad: directory instead of file")
def _(t): p = t / "dir.h5ad"; p.mkdir(); return _reads(read_h5ad_spots, p)
@rejected("h5ad: random bytes")
def _(t): return _reads(read_h5ad_spots, _sig_file(t, "noise.h5ad", np.random.default_rng(2).bytes(8192)))
@rejected("h5ad: truncated to half")
def _(t):
    p = _h5ad(t); b = p.read_bytes(); p.write_bytes(b[: len(b) // 2]); return _reads(read_h5ad_spots, p)
@rejected("h5ad: truncated to 600 bytes")
def _(t):
    p = _h5ad(t); p.write_bytes(p.read_bytes()[:600]); return _reads(read_h5ad_spots, p)
@rejected("h5ad: a TIFF renamed .h5ad")
def _(t):
    p = _tiff(t); q = t / "slide.h5ad"; p.rename(q); return _reads(read_h5ad_spots, q)
@rejected("h5ad: plain HDF5, not AnnData")
def _(t):
    import h5py
    p = t / "plain.h5ad"
    with h5py.File(p, "w") as f:
        f["data"] = np.arange(10)
    return _reads(read_h5ad_spots, p)
@rejected("h5ad: no obsm['spatial']")
def _(t): return _reads(read_h5ad_spots, _h5ad(t, lambda a: a.obsm.pop("spatial")), "obsm['spatial']")
@rejected("h5ad: obsm['spatial'] has 1 column")
def _(t):
    def e(a): a.obsm["spatial"] = a.obsm["spatial"][:, :1]
    return _reads(read_h5ad_spots, _h5ad(t, e), "obsm['spatial']")
@rejected("h5ad: obsm['spatial'] holds NaN")
def _(t):
    def e(a): a.obsm["spatial"][3, 0] = np.nan
    return _reads(read_h5ad_spots, _h5ad(t, e), "NaN/inf")
@rejected("h5ad: obsm['spatial'] holds inf")
def _(t):
    def e(a): a.obsm["spatial"][5, 1] = np.inf
    return _reads(read_h5ad_spots, _h5ad(t, e), "NaN/inf")
@rejected("h5ad: obsm['spatial'] holds text")
def _(t):
    def e(a): a.obsm["spatial"] = pd.DataFrame({"x": ["a"] * a.n_obs, "y": ["b"] * a.n_obs}, index=a.obs_names)
    return _reads(read_h5ad_spots, _h5ad(t, e), "obsm['spatial']")
@rejected("h5ad: counts hold NaN")
def _(t):
    def e(a): a.X[0, 0] = np.nan
    return _reads(read_h5ad_spots, _h5ad(t, e), "NaN")
@rejected("h5ad: counts hold inf")
def _(t):
    def e(a): a.X[2, 3] = np.inf
    return _reads(read_h5ad_spots, _h5ad(t, e), "inf")
@rejected("h5ad: negative counts")
def _(t):
    def e(a): a.X[1, 1] = -3
    return _reads(read_h5ad_spots, _h5ad(t, e), "negative")
@rejected("h5ad: sparse counts with NaN")
def _(t):
    import scipy.sparse as sp
    def e(a):
        x = a.X.copy(); x[0, 0] = np.nan; a.X = sp.csr_matrix(x)
    return _reads(read_h5ad_spots, _h5ad(t, e), "NaN")
@rejected("h5ad: layers['counts'] negative")
def _(t):
    def e(a):
        c = a.X.copy(); c[0, 0] = -1; a.layers["counts"] = c
    return _reads(read_h5ad_spots, _h5ad(t, e), "negative")
@rejected("h5ad: duplicate barcodes")
def _(t):
    def e(a): a.obs_names = ["SAME"] * a.n_obs
    return _reads(read_h5ad_spots, _h5ad(t, e), "duplicate spot barcodes")
@rejected("h5ad: zero spots")
def _(t): return _reads(read_h5ad_spots, _h5ad(t, lambda a: a[:0].copy()), "empty")
@rejected("h5ad: zero genes")
def _(t): return _reads(read_h5ad_spots, _h5ad(t, lambda a: a[:, :0].copy()), "empty")
@rejected("h5ad: no spot diameter")
def _(t): return _reads(read_h5ad_spots, _h5ad(t, lambda a: a.uns.pop("spatial")), "spot_diameter_fullres")
@rejected("h5ad: spot diameter negative")
def _(t):
    def e(a): a.uns["spatial"]["lib"]["scalefactors"]["spot_diameter_fullres"] = -5.0
    return _reads(read_h5ad_spots, _h5ad(t, e), "diameter")
@rejected("h5ad: spot diameter NaN")
def _(t):
    def e(a): a.uns["spatial"]["lib"]["scalefactors"]["spot_diameter_fullres"] = np.nan
    return _reads(read_h5ad_spots, _h5ad(t, e), "diameter")
@rejected("h5ad: spot diameter is text")
def _(t):
    def e(a): a.uns["spatial"]["lib"]["scalefactors"]["spot_diameter_fullres"] = "big"
    return _reads(read_h5ad_spots, _h5ad(t, e), "spot_diameter_fullres")
@rejected("h5ad: spot diameter is an array")
def _(t):
    def e(a): a.uns["spatial"]["lib"]["scalefactors"]["spot_diameter_fullres"] = np.array([1.0, 2.0])
    return _reads(read_h5ad_spots, _h5ad(t, e), "spot_diameter_fullres")
@rejected("h5ad: pixel size is text")
def _(t):
    def e(a): a.uns["roiscore"] = {"pixel_size_um": "tiny"}
    return _reads(read_h5ad_spots, _h5ad(t, e), "pixel_size_um")
@rejected("h5ad: pixel size negative")
def _(t):
    def e(a): a.uns["roiscore"] = {"pixel_size_um": -1.0}
    return _reads(read_h5ad_spots, _h5ad(t, e), "pixel_size_um")
@rejected("h5ad: unknown spot shape")
def _(t):
    def e(a): a.uns["roiscore"] = {"spot_shape": "hexagon"}
    return _reads(read_h5ad_spots, _h5ad(t, e), "spot shape")
@rejected("h5ad: counts layer asked for is missing")
def _(t):
    p = _h5ad(t)
    return Bad(lambda: read_h5ad_spots(p, counts_layer="raw"), (p.name, "'raw'"))


# -- instrument folders -------------------------------------------------------
@rejected("visium: scalefactors is not JSON")
def _(t):
    from napari_roiscore.readers import read_spaceranger
    outs = _visium(t); sf = outs / "spatial" / "scalefactors_json.json"; sf.write_text("{oops")
    return Bad(lambda: read_spaceranger(outs), (sf.name,))
@rejected("visium: scalefactors diameter is text")
def _(t):
    from napari_roiscore.readers import read_spaceranger
    outs = _visium(t); write_json(outs / "spatial" / "scalefactors_json.json", {"spot_diameter_fullres": "x"})
    return Bad(lambda: read_spaceranger(outs), ("spot_diameter_fullres",))
@rejected("visium: truncated matrix .h5")
def _(t):
    from napari_roiscore.readers import read_spaceranger
    outs = _visium(t); h5 = outs / "filtered_feature_bc_matrix.h5"; h5.write_bytes(h5.read_bytes()[:500])
    return Bad(lambda: read_spaceranger(outs), (h5.name,))
@rejected("visium: tissue positions are garbage")
def _(t):
    from napari_roiscore.readers import read_spaceranger
    outs = _visium(t); pos = outs / "spatial" / "tissue_positions.csv"; pos.write_bytes(b"\x00\xff garbage\n\x01")
    return Bad(lambda: read_spaceranger(outs), (pos.name,))
@rejected("visium: tissue positions hold text coordinates")
def _(t):
    from napari_roiscore.readers import read_spaceranger
    outs = _visium(t); pos = outs / "spatial" / "tissue_positions.csv"
    df = pd.read_csv(pos); df["pxl_row_in_fullres"] = "far"; df.to_csv(pos, index=False)
    return Bad(lambda: read_spaceranger(outs), (pos.name,))
@rejected("xenium: cells.parquet is corrupt")
def _(t):
    from napari_roiscore.readers import read_xenium
    write_10x_h5(t / "cell_feature_matrix.h5", np.array([[1, 0]]), ["c1"], ["E1", "E2"], ["CD68", "CD163"])
    cells = t / "cells.parquet"; cells.write_bytes(b"PAR1 not really")
    return Bad(lambda: read_xenium(t), (cells.name,))
@rejected("geomx: PKC is not JSON")
def _(t):
    from napari_roiscore.readers import read_pkc
    p = _sig_file(t, "kit.pkc", "{not json")
    return _reads(read_pkc, p)
@rejected("geomx: PKC Targets is a number")
def _(t):
    from napari_roiscore.readers import read_pkc
    p = _sig_file(t, "kit.pkc", json.dumps({"Targets": 5}))
    return _reads(read_pkc, p, "Targets")


# -- GeoJSON ------------------------------------------------------------------
def _geo(t: Path, obj: object, *mentions: str) -> Bad:
    return _reads(read_geojson, _geojson_file(t, obj), *mentions)


@rejected("geojson: missing file")
def _(t): return _reads(read_geojson, t / "nope.geojson")
@rejected("geojson: empty file")
def _(t): return _geo(t, "")
@rejected("geojson: directory instead of file")
def _(t): p = t / "dir.geojson"; p.mkdir(); return _reads(read_geojson, p)
@rejected("geojson: not JSON")
def _(t): return _geo(t, "{'type': 'FeatureCollection'")
@rejected("geojson: binary, not UTF-8")
def _(t): return _reads(read_geojson, _sig_file(t, "bin.geojson", b"\xff\xfe\x00\x81" * 100))
@rejected("geojson: a number")
def _(t): return _geo(t, "42")
@rejected("geojson: a string")
def _(t): return _geo(t, '"FeatureCollection"')
@rejected("geojson: null")
def _(t): return _geo(t, "null")
@rejected("geojson: features is a dict")
def _(t): return _geo(t, {"type": "FeatureCollection", "features": {"a": 1}}, "'features'")
@rejected("geojson: features missing")
def _(t): return _geo(t, {"type": "FeatureCollection"}, "'features'")
@rejected("geojson: feature without geometry")
def _(t): return _geo(t, {"type": "FeatureCollection", "features": [{"type": "Feature"}]}, "geometry")
@rejected("geojson: feature is a string")
def _(t): return _geo(t, ["Feature"], "feature 0")
@rejected("geojson: Point geometry")
def _(t): return _geo(t, [_feature([1, 2], "Point")], "'Point'")
@rejected("geojson: LineString geometry")
def _(t): return _geo(t, [_feature([[0, 0], [1, 1]], "LineString")], "'LineString'")
@rejected("geojson: geometry type missing")
def _(t): return _geo(t, [{"type": "Feature", "geometry": {"coordinates": SQUARE}}], "geometry type")
@rejected("geojson: coordinates missing")
def _(t): return _geo(t, [{"type": "Feature", "geometry": {"type": "Polygon"}}], "coordinates")
@rejected("geojson: coordinates are strings")
def _(t): return _geo(t, [_feature([[["0", "0"], ["100", "0"], ["100", "100"], ["0", "0"]]])], "position")
@rejected("geojson: coordinates are booleans")
def _(t): return _geo(t, [_feature([[[True, False], [1, 0], [1, 1], [True, False]]])], "position")
@rejected("geojson: coordinates nested too shallow")
def _(t): return _geo(t, [_feature([[0, 0], [1, 0], [1, 1], [0, 0]])], "feature 0")
@rejected("geojson: MultiPolygon with Polygon nesting")
def _(t): return _geo(t, [_feature(SQUARE, "MultiPolygon")], "feature 0")
@rejected("geojson: empty coordinates")
def _(t): return _geo(t, [_feature([])], "coordinates")
@rejected("geojson: ring of 2 points")
def _(t): return _geo(t, [_feature([[[0, 0], [1, 1]]])], "feature 0")
@rejected("geojson: huge float 1e300")
def _(t): return _geo(t, [_feature([[[0, 0], [1e300, 0], [1, 1], [0, 0]]])], "coordinate")
@rejected("geojson: number overflowing to inf (1e999)")
def _(t): return _geo(t, '[{"type":"Feature","geometry":{"type":"Polygon","coordinates":'
                         '[[[0,0],[1e999,0],[1,1],[0,0]]]}}]', "coordinate")
@rejected("geojson: huge integer 10^400")
def _(t): return _geo(t, '[{"type":"Feature","geometry":{"type":"Polygon","coordinates":'
                         '[[[0,0],[1' + "0" * 400 + ',0],[1,1],[0,0]]]}}]', "coordinate")
@rejected("geojson: NaN coordinate")
def _(t): return _geo(t, '[{"type":"Feature","geometry":{"type":"Polygon","coordinates":'
                         '[[[0,0],[NaN,0],[1,1],[0,0]]]}}]', "coordinate")
@rejected("geojson: nesting 10^5 levels deep")
def _(t): return _geo(t, '{"type":"FeatureCollection","features":' + "[" * 100_000 + "]" * 100_000 + "}")
@rejected("geojson: coordinates 10^5 levels deep (parsed data)")
def _(t):
    data = [_feature(_deep_list(100_000))]
    return Bad(lambda: parse_geojson(data, "deep.geojson"), ("deep.geojson", "feature 0"))
@rejected("geojson: larger than 512 MB (sparse file)")
def _(t):
    p = t / "big.geojson"
    with open(p, "wb") as fh:
        fh.truncate(600 * 1024 * 1024)
    return _reads(read_geojson, p, "512 MB")


# -- signatures -----------------------------------------------------------------
BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _sig(t: Path, name: str, text: str | bytes, *mentions: str) -> Bad:
    return _reads(load_signatures, _sig_file(t, name, text), *mentions)


@rejected("signature: missing file")
def _(t): return _reads(load_signatures, t / "nope.yaml")
@rejected("signature: directory instead of file")
def _(t): p = t / "dir.yaml"; p.mkdir(); return _reads(load_signatures, p)
@rejected("signature: empty YAML")
def _(t): return _sig(t, "empty.yaml", "")
@rejected("signature: empty GMT")
def _(t): return _sig(t, "empty.gmt", "")
@rejected("signature: empty JSON")
def _(t): return _sig(t, "empty.json", "")
@rejected("signature: wrong extension .txt")
def _(t): return _sig(t, "genes.txt", "CD68\nCD163\n", "'.txt'")
@rejected("signature: binary, not UTF-8")
def _(t): return _sig(t, "bin.yaml", b"\xff\xfe\x81\x00" * 64)
@rejected("signature: YAML python object tag")
def _(t): return _sig(t, "evil.yaml", "name: !!python/object/apply:os.system ['echo pwned']\nup: [CD68]\n")
@rejected("signature: YAML python/name tag")
def _(t): return _sig(t, "evil2.yaml", "!!python/name:os.system\n")
@rejected("signature: YAML billion laughs in genes")
def _(t): return _sig(t, "laughs.yaml", BILLION_LAUGHS + "name: bomb\nup: *i\n", "'up'")
@rejected("signature: YAML billion laughs in name")
def _(t): return _sig(t, "laughs_name.yaml", BILLION_LAUGHS + "name: *i\nup: [CD68]\n", "'name'")
@rejected("signature: YAML billion laughs in description")
def _(t): return _sig(t, "laughs_desc.yaml", BILLION_LAUGHS + "name: x\nup: [CD68]\ndescription: *i\n",
                      "'description'")
@rejected("signature: YAML billion laughs as the document")
def _(t): return _sig(t, "laughs_doc.yaml", BILLION_LAUGHS.replace("i: &i", "signatures: &i"))
@rejected("signature: YAML nested 10^5 levels")
def _(t): return _sig(t, "deep.yaml", "[" * 100_000 + "]" * 100_000)
@rejected("signature: YAML larger than the limit")
def _(t): return _sig(t, "huge.yaml", "name: big\nup: [" + "CD68, " * 2_500_000 + "CD163]\n", "MB")
@rejected("signature: YAML syntax error")
def _(t): return _sig(t, "broken.yaml", "name: [unclosed\nup: CD68\n")
@rejected("signature: YAML is a number")
def _(t): return _sig(t, "num.yaml", "42\n", "int")
@rejected("signature: YAML up is a mapping")
def _(t): return _sig(t, "map.yaml", "name: x\nup: {CD68: 1}\n", "'up'")
@rejected("signature: YAML up holds floats")
def _(t): return _sig(t, "floats.yaml", "name: x\nup: [1.5, 2.5]\n", "'up'")
@rejected("signature: YAML up holds binary")
def _(t): return _sig(t, "binary.yaml", "name: x\nup: [!!binary aGVsbG8=]\n", "'up'")
@rejected("signature: no genes")
def _(t): return _sig(t, "nogenes.yaml", "name: x\nup: []\n", "no genes")
@rejected("signature: weight is text")
def _(t): return _sig(t, "w.yaml", "name: x\nup: [CD68]\nweights: {CD68: heavy}\n", "weight")
@rejected("signature: weight is infinite")
def _(t): return _sig(t, "winf.yaml", "name: x\nup: [CD68]\nweights: {CD68: .inf}\n", "weight")
@rejected("signature: weight is 10^400")
def _(t): return _sig(t, "wbig.json", '{"name": "x", "up": ["CD68"], "weights": {"CD68": 1' + "0" * 400 + "}}",
                      "weight")
@rejected("signature: weights list of wrong length")
def _(t): return _sig(t, "wlen.yaml", "name: x\nup: [CD68, CD163]\nweights: [1]\n", "weights")
@rejected("signature: signatures is a number")
def _(t): return _sig(t, "sigs.yaml", "signatures: 3\n", "int")
@rejected("signature: JSON syntax error")
def _(t): return _sig(t, "broken.json", '{"name": "x", "up": ["CD68"]')
@rejected("signature: JSON nested 10^5 levels")
def _(t): return _sig(t, "deep.json", "[" * 100_000 + "]" * 100_000)
@rejected("signature: GMT without tabs")
def _(t): return _sig(t, "spaces.gmt", "MY_SET description CD68 CD163\n", "line 1")
@rejected("signature: none of the genes in the data")
def _(t): return Bad(lambda: match_genes(Signature("x", ("NOPE1", "NOPE2")), ["CD68", "CD163"]),
                     ("NOPE1", "signature genes"))
@rejected("signature: scoring a table without the genes")
def _(t):
    spots = _spots(np.random.default_rng(0).uniform(0, 100, (20, 2)))
    return Bad(lambda: score_spots(spots, Signature("x", ("STAB1",))), ("STAB1",))


# -- spots vs image, ROIs ---------------------------------------------------------
@rejected("spots: none on the image")
def _(t):
    spots = _spots(np.full((20, 2), 5000.0) + np.arange(20)[:, None])
    return Bad(lambda: spots_on_image(_image(), spots), ("spots.h5ad", "slide.ome.tif"))
@rejected("spots: negative coordinates only")
def _(t):
    spots = _spots(-np.arange(1, 21, dtype=float)[:, None] * np.ones((1, 2)) * 50)
    return Bad(lambda: spots_on_image(_image(), spots), ("spots.h5ad",))
@rejected("marker: no spot footprint on the image")
def _(t):
    mask = marker_mask(_image(), 0, threshold=0.5)
    return Bad(lambda: footprint_fractions(mask, np.full((5, 2), 1e6), 10.0), ("image",))
@rejected("spots: SpotTable with duplicate gene names")
def _(t):
    a = _adata(); a.var_names = ["CD68"] * a.n_vars
    return Bad(lambda: SpotTable(a, 10.0, provenance={"path": "dup.h5ad"}), ("dup.h5ad", "CD68"))


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_bad_input_raises_one_documented_error(case, tmp_path):
    bad = REJECTED[case](tmp_path)
    try:
        bad.call()
    except RoiScoreError as err:
        assert type(err) is RoiScoreError
        msg = str(err)
        assert "Fix:" in msg and err.fix.strip(), msg
        for word in bad.mentions:
            assert word in msg, f"{word!r} not in {msg!r}"
        assert len(msg) < 2000, "messages stay readable"
    except BaseException as err:  # noqa: BLE001 - the point of the corpus
        pytest.fail(f"{case}: raised {type(err).__name__}: {str(err)[:300]} instead of RoiScoreError")
    else:
        pytest.fail(f"{case}: accepted bad input silently")


def test_corpus_is_large_enough():
    assert len(REJECTED) + len(ACCEPTED) >= 60


# ---------------------------------------------------------------------------
# messy but usable input: the documented behaviour
# ---------------------------------------------------------------------------
ACCEPTED: dict[str, Callable[[Path], None]] = {}


def accepted(name: str):
    def register(fn):
        ACCEPTED[name] = fn
        return fn
    return register


@accepted("h5ad: duplicate gene names are made unique (GENE, GENE-1)")
def _(t):
    def e(a): a.var_names = ["CD68", "CD68", "CD163", "CD163", "CD163", "STAB1", "MRC1", "MSR1"]
    spots = read_h5ad_spots(_h5ad(t, e))
    assert spots.gene_names == ["CD68", "CD68-1", "CD163", "CD163-1", "CD163-2", "STAB1", "MRC1", "MSR1"]
    # the anndata way, compared with anndata itself (what scanpy users call)
    import anndata as ad

    a = ad.AnnData(X=np.zeros((1, 8)), var=pd.DataFrame(index=["CD68", "CD68", "CD163", "CD163", "CD163",
                                                                 "STAB1", "MRC1", "MSR1"]))
    a.var_names_make_unique()
    assert spots.gene_names == list(a.var_names)
    m = match_genes(Signature("x", ("CD68", "CD163")), spots.gene_names)
    # the first copy, as scanpy indexes a gene by name after var_names_make_unique
    assert list(m.up_index) == [a.var_names.get_loc("CD68"), a.var_names.get_loc("CD163")] == [0, 2]


@accepted("h5ad: float counts that are whole numbers")
def _(t):
    assert read_h5ad_spots(_h5ad(t)).n_spots == 20


@accepted("signature: some genes missing are reported, the others used")
def _(t):
    m = match_genes(Signature("x", ("GENE1", "NOPE", "gene2")), [f"GENE{j}" for j in range(5)])
    assert m.used == ("GENE1", "GENE2") and m.missing == ("NOPE",)


@accepted("signature: YAML with a harmless alias")
def _(t):
    p = _sig_file(t, "alias.yaml", "- {name: a, up: &g [CD68, CD163]}\n- {name: b, up: *g}\n")
    assert [s.up for s in load_signatures(p)] == [("CD68", "CD163")] * 2


@accepted("signature: duplicate genes in a signature are counted once")
def _(t):
    p = _sig_file(t, "dups.gmt", "S\tdesc\tCD68\tCD68\tcd163\n")
    assert load_signatures(p)[0].up == ("CD68", "cd163")


@accepted("spots: some outside the image are flagged, not dropped")
def _(t):
    xy = np.array([[10.0, 10.0], [50.0, 50.0], [500.0, 20.0], [-5.0, 40.0]])
    inside = spots_on_image(_image(), _spots(xy))
    assert inside.tolist() == [True, True, False, False]


@accepted("roi: self-intersecting bow-tie is repaired into two triangles")
def _(t):
    r = Roi.from_xy("bow", "tumour", np.array([[0, 0], [10, 10], [10, 0], [0, 10]]))
    assert isinstance(r.geometry, MultiPolygon) and len(r.geometry.geoms) == 2
    assert r.area_px == pytest.approx(50.0) and r.problem is None


@accepted("roi: zero-area outline becomes an empty ROI with a problem")
def _(t):
    r = Roi.from_xy("flat", "tumour", np.array([[0, 0], [5, 5], [10, 10]]))
    assert r.geometry.is_empty and "area" in r.problem


@accepted("roi: empty outline becomes an empty ROI with a problem")
def _(t):
    (r,) = rois_from_shapes([np.zeros((0, 2))], ["polygon"], ["e"], ["stroma"])
    assert r.geometry.is_empty and r.problem


@accepted("roi: NaN vertex gives an empty ROI with a problem")
def _(t):
    (r,) = rois_from_shapes([np.array([[0, 0], [np.nan, 1], [1, 1]])], ["polygon"])
    assert r.geometry.is_empty and "finite" in r.problem


@accepted("roi: 100k vertices are kept and scored")
def _(t):
    n = 100_000
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rc = np.column_stack([500 + 400 * np.sin(a), 500 + 400 * np.cos(a)])
    (r,) = rois_from_shapes([rc], ["polygon"], ["big"], ["tumour"])
    assert r.problem is None and len(r.geometry.exterior.coords) == n + 1
    from napari_roiscore.scoring.scorer import RoiScorer
    spots = _spots(np.random.default_rng(3).uniform(0, 1000, (2000, 2)))
    members = RoiScorer(spots).members(r)
    import shapely
    xy = spots.xy
    assert np.array_equal(members, np.flatnonzero(shapely.contains_xy(r.geometry, xy[:, 0], xy[:, 1])))


@accepted("geojson: self-intersecting polygon is repaired")
def _(t):
    (r,) = read_geojson(_geojson_file(t, [_feature([[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]])]))
    assert r.area_px == pytest.approx(50.0)


@accepted("geojson: zero-area polygon gives an ROI with a problem")
def _(t):
    (r,) = read_geojson(_geojson_file(t, [_feature([[[0, 0], [5, 5], [10, 10], [0, 0]]], name="flat")]))
    assert r.name == "flat" and r.problem


@accepted("geojson: odd properties fall back to defaults")
def _(t):
    feats = [_feature(SQUARE, name={"x": 1}, classification=7), {**_feature(SQUARE), "properties": "x"}]
    rois = read_geojson(_geojson_file(t, feats))
    assert [r.roi_class for r in rois] == ["other", "other"]
    assert [r.name for r in rois] == ["001", "002"]


@accepted("geojson: empty FeatureCollection gives no ROI")
def _(t):
    assert read_geojson(_geojson_file(t, {"type": "FeatureCollection", "features": []})) == []


@accepted("geojson: hole outside its shell is repaired")
def _(t):
    geom = [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], [[20, 20], [30, 20], [30, 30], [20, 20]]]
    (r,) = read_geojson(_geojson_file(t, [_feature(geom)]))
    assert r.problem is None and r.area_px > 0


@accepted("tiff: NaN pixels in a float image open lazily")
def _(t):
    img = read_multiplex_tiff(_tiff(t, data=np.full((1, 32, 32), np.nan, np.float32)))
    assert img.shape_yx == (32, 32)


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_messy_input_has_documented_result(case, tmp_path):
    ACCEPTED[case](tmp_path)


# ---------------------------------------------------------------------------
# memory: a huge declared image is refused before anything is allocated
# ---------------------------------------------------------------------------
def test_huge_declared_image_is_refused_without_allocating(tmp_path):
    path = huge_tiff_header(tmp_path / "huge.tif")
    assert path.stat().st_size < 200
    tracemalloc.start()
    try:
        with pytest.raises(RoiScoreError, match="declares"):
            read_multiplex_tiff(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024**2, f"peak {peak / 1024**2:.0f} MB"


def test_sparse_pyramid_helper_writes_a_40k_pyramid(tmp_path):
    p = write_sparse_pyramid(tmp_path / "big.ome.tif")
    assert p.stat().st_size < 20 * 1024**2
    img = read_multiplex_tiff(p)
    assert img.shape_yx == (40_000, 40_000) and len(img.levels) == 4
    assert img.channel_names == ["DAPI", "CD68"] and img.pixel_size_um == 0.5
    assert int(img.levels[0][1, 20_000:20_010, 20_000:20_010].sum().compute()) == 0
