"""Second bad-input corpus (issue 12): readers, resources, numbers, messages, outputs, autosave.

Each class is a generator of named cases; a case either must raise one
RoiScoreError mentioning given words (``Bad``), or is a function asserting the
documented result for messy-but-usable input.  None of these cases is in
tests/test_bad_inputs.py.  The four severe examples of the issue are marked
"SEVERE" in their names.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import struct
import subprocess
import sys
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import tifffile
from shapely.geometry import Polygon

from napari_roiscore.analysis.export import scores_csv, write_annotated_h5ad
from napari_roiscore.analysis.report import write_report
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.spot_footprints import footprint_fractions
from napari_roiscore.images.multiplex import read_multiplex_tiff
from napari_roiscore.outputs import check_outputs, clear_protected, limited_list, write_all
from napari_roiscore.readers.dispatch import read_spots_of_kind
from napari_roiscore.readers.geomx import read_dcc, read_geomx_ngs, read_pkc
from napari_roiscore.readers.geomx_export import read_geomx_export
from napari_roiscore.readers.tenx import read_10x_h5, read_10x_mtx
from napari_roiscore.readers.visium import read_spaceranger, read_tissue_positions
from napari_roiscore.readers.xenium import read_xenium
from napari_roiscore.rois.autosave import AutosaveWarning, load_autosave, save_autosave, sidecar_path
from napari_roiscore.rois.geojson import read_geojson, write_geojson
from napari_roiscore.rois.roi import Roi, merge_same_named
from napari_roiscore.scoring.methods import score_spots
from napari_roiscore.scoring.signature import Signature, load_signatures
from napari_roiscore.session import load_session, save_session
from napari_roiscore.spots.table import SpotTable, read_h5ad_spots
from tenx_fixtures import write_10x_h5, write_json
from test_bad_inputs import _adata, _h5ad

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 30


@pytest.fixture(autouse=True)
def _no_hang(monkeypatch, tmp_path):
    """Fail instead of hanging; autosaves stay in tmp; protected inputs do not leak between cases."""
    monkeypatch.delenv("NAPARI_ROISCORE_AUTOSAVE_DIR", raising=False)

    def alarm(signum, frame):
        raise TimeoutError(f"bad input took longer than {TIMEOUT_S} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(TIMEOUT_S)
    clear_protected()
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)
    clear_protected()


# ---------------------------------------------------------------------------
# builders of valid inputs
# ---------------------------------------------------------------------------
BCS = ["AAAC-1", "AAAG-1", "AAAT-1"]
COUNTS = np.array([[1, 0], [2, 3], [0, 1]])


def _visium(tmp: Path, positions: pd.DataFrame | None = None, scalefactors: dict | None = None) -> Path:
    outs = tmp / "outs"
    (outs / "spatial").mkdir(parents=True, exist_ok=True)
    write_10x_h5(outs / "filtered_feature_bc_matrix.h5", COUNTS, BCS, ["ENSG1", "ENSG2"], ["CD68", "CD163"])
    pos = positions if positions is not None else pd.DataFrame({
        "barcode": BCS, "in_tissue": 1, "array_row": [0, 1, 2], "array_col": [0, 1, 2],
        "pxl_row_in_fullres": [10, 20, 30], "pxl_col_in_fullres": [10, 20, 30]})
    pos.to_csv(outs / "spatial" / "tissue_positions.csv", index=False)
    write_json(outs / "spatial" / "scalefactors_json.json", scalefactors or
               {"spot_diameter_fullres": 20.0, "tissue_hires_scalef": 0.5, "tissue_lowres_scalef": 0.1})
    return outs


def _h5(tmp: Path, edit: Callable[[h5py.Group], None]) -> Path:
    p = tmp / "m.h5"
    write_10x_h5(p, COUNTS, BCS, ["ENSG1", "ENSG2"], ["CD68", "CD163"])
    with h5py.File(p, "r+") as f:
        edit(f["matrix"])
    return p


def _replace(g: h5py.Group, name: str, values) -> None:
    del g[name]
    g[name] = values


def _mtx(tmp: Path, body: bytes | None = None, entries: str = "1 1 1\n2 2 3\n") -> Path:
    folder = tmp / "filtered_feature_bc_matrix"
    folder.mkdir(parents=True, exist_ok=True)
    n = len(entries.strip().splitlines())
    text = (f"%%MatrixMarket matrix coordinate integer general\n2 3 {n}\n{entries}").encode()
    if body is not None:
        text = body
    (folder / "matrix.mtx.gz").write_bytes(gzip.compress(text))
    (folder / "features.tsv.gz").write_bytes(gzip.compress(b"ENSG1\tCD68\tGene Expression\nENSG2\tCD163\tGene Expression\n"))
    (folder / "barcodes.tsv.gz").write_bytes(gzip.compress(("\n".join(BCS) + "\n").encode()))
    return folder


def _real_mtx_header(kind: str = "real") -> str:
    return f"%%MatrixMarket matrix coordinate {kind} general\n"


def _xenium(tmp: Path, cells: pd.DataFrame | None = None) -> Path:
    folder = tmp / "xenium"
    folder.mkdir()
    write_10x_h5(folder / "cell_feature_matrix.h5", COUNTS, ["c1", "c2", "c3"], ["ENSG1", "ENSG2"], ["CD68", "CD163"])
    cells = cells if cells is not None else pd.DataFrame(
        {"cell_id": ["c1", "c2", "c3"], "x_centroid": [1.0, 2.0, 3.0], "y_centroid": [1.0, 2.0, 3.0],
         "cell_area": [50.0, 60.0, 70.0]})
    cells.to_csv(folder / "cells.csv", index=False)
    return folder


def _png(path: Path, width: int, height: int, idat: bytes | None = None) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = idat if idat is not None else zlib.compress(b"\0" * (1 + 3 * width) * height)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def _ome(path: Path, data: np.ndarray, axes: str, physical: str | None = None) -> Path:
    meta = {"axes": axes}
    if physical is not None:
        meta["PhysicalSizeX"] = physical
        meta["PhysicalSizeY"] = physical
    tifffile.imwrite(path, data, ome=True, metadata=meta)
    if physical is not None and physical in ("-0.5", "nan"):  # tifffile refuses to write these: patch the XML
        with tifffile.TiffFile(path) as tif:
            xml = tif.ome_metadata
        import re
        fixed = re.sub(r'PhysicalSizeX="[^"]*"', f'PhysicalSizeX="{physical}"', xml)
        tifffile.tiffcomment(path, fixed.encode())
    return path


def _fifo(tmp: Path, name: str) -> Path:
    p = tmp / name
    os.mkfifo(p)
    return p


def _rois() -> list[Roi]:
    return [Roi("004", "tumour", Polygon([(0, 0), (50, 0), (50, 50), (0, 50)]))]


def _table() -> pd.DataFrame:
    return pd.DataFrame({"roi": ["004"], "class": ["tumour"], "spots": [3], "score": [0.5],
                         "median": [0.4], "status": ["ok"]})


# ---------------------------------------------------------------------------
# the case types
# ---------------------------------------------------------------------------
@dataclass
class Bad:
    """A call on bad input, and the words its single RoiScoreError must mention."""

    call: Callable[[], object]
    mentions: tuple[str, ...] = ()


Case = Callable[[Path], "Bad | None"]


def _check(case: Case, tmp: Path) -> None:
    bad = case(tmp)
    if bad is None:  # a messy-but-usable case: it asserted its own result
        return
    try:
        bad.call()
    except RoiScoreError as err:
        msg = str(err)
        assert type(err) is RoiScoreError
        assert "Fix:" in msg and err.fix.strip(), msg
        for word in bad.mentions:
            assert word in msg, f"{word!r} not in {msg!r}"
        assert len(msg) < 2500, "messages stay readable"
    except BaseException as err:  # noqa: BLE001 - the point of the corpus
        pytest.fail(f"raised {type(err).__name__}: {str(err)[:300]} instead of RoiScoreError")
    else:
        pytest.fail("accepted bad input silently")


# ---------------------------------------------------------------------------
# class 1: readers
# ---------------------------------------------------------------------------
def reader_cases() -> Iterator[tuple[str, Case]]:
    yield "SEVERE 10x h5: matrix/indices past the feature count", lambda t: Bad(
        lambda: read_10x_h5(_h5(t, lambda g: _replace(g, "indices", np.array([0, 7, 1, 0], np.int64)))),
        ("m.h5", "sparse indices"))
    yield "10x h5: negative index", lambda t: Bad(
        lambda: read_10x_h5(_h5(t, lambda g: _replace(g, "indices", -np.ones(len(g["indices"]), np.int64)))),
        ("m.h5",))
    yield "10x h5: indptr decreasing", lambda t: Bad(
        lambda: read_10x_h5(_h5(t, lambda g: _replace(g, "indptr", np.array([0, 3, 1, 4], np.int64)))),
        ("m.h5", "index pointer"))
    yield "10x h5: indptr too short", lambda t: Bad(
        lambda: read_10x_h5(_h5(t, lambda g: _replace(g, "indptr", np.array([0, 4], np.int64)))),
        ("m.h5", "index pointer"))
    yield "10x h5: indptr past the data", lambda t: Bad(
        lambda: read_10x_h5(_h5(t, lambda g: _replace(g, "indptr", np.array([0, 1, 2, 99], np.int64)))),
        ("m.h5",))
    yield "10x h5: fractional counts", lambda t: Bad(
        lambda: read_10x_h5(_h5(t, lambda g: _replace(g, "data", np.array([1.5, 2, 3, 1.0])))), ("fractions",))
    yield "10x h5: negative counts", lambda t: Bad(
        lambda: read_10x_h5(_h5(t, lambda g: _replace(g, "data", np.array([1, -2, 3, 1], np.int32)))), ("negative",))
    yield "10x h5: NaN counts", lambda t: Bad(
        lambda: read_10x_h5(_h5(t, lambda g: _replace(g, "data", np.array([1, np.nan, 3, 1])))), ("NaN",))
    yield "10x h5: shape with three entries", lambda t: Bad(
        lambda: read_10x_h5(_h5(t, lambda g: _replace(g, "shape", np.array([2, 3, 4], np.int32)))), ("shape",))
    yield "10x h5: data as text", lambda t: Bad(
        lambda: read_10x_h5(_h5(t, lambda g: _replace(g, "data", np.array([b"a", b"b", b"c", b"d"])))), ("m.h5",))
    yield "mtx.gz truncated", lambda t: Bad(lambda: read_10x_mtx(_truncated_mtx(t)), ("matrix.mtx.gz",))
    yield "mtx.gz empty", lambda t: Bad(lambda: read_10x_mtx(_mtx(t, body=b"")), ("matrix.mtx.gz",))
    yield "mtx.gz header only", lambda t: Bad(
        lambda: read_10x_mtx(_mtx(t, body=b"%%MatrixMarket matrix coordinate integer general\n")), ("matrix.mtx.gz",))
    yield "mtx.gz: index past the size line", lambda t: Bad(
        lambda: read_10x_mtx(_mtx(t, entries="1 1 1\n9 2 3\n")), ("matrix.mtx.gz",))
    yield "mtx.gz: not gzip at all", lambda t: Bad(lambda: read_10x_mtx(_not_gzip(t)), ("matrix.mtx.gz",))
    yield "features.tsv.gz empty", lambda t: Bad(lambda: read_10x_mtx(_empty_features(t)), ("features.tsv.gz",))
    yield "positions: duplicate barcode", lambda t: Bad(lambda: read_spaceranger(_visium(t, positions=pd.DataFrame({
        "barcode": [BCS[0], BCS[0], BCS[2]], "in_tissue": 1, "array_row": [0, 1, 2], "array_col": [0, 1, 2],
        "pxl_row_in_fullres": [10, 20, 30], "pxl_col_in_fullres": [10, 20, 30]})), load_images=False),
        ("tissue_positions.csv", "twice", BCS[0]))
    yield "positions: pixel column holds text", lambda t: Bad(lambda: read_spaceranger(_visium(t, positions=pd.DataFrame({
        "barcode": BCS, "in_tissue": 1, "array_row": [0, 1, 2], "array_col": [0, 1, 2],
        "pxl_row_in_fullres": ["a", "b", "c"], "pxl_col_in_fullres": [10, 20, 30]})), load_images=False),
        ("pxl_row_in_fullres",))
    yield "xenium: duplicate cell ids", lambda t: Bad(lambda: read_xenium(_xenium(t, pd.DataFrame(
        {"cell_id": ["c1", "c2", "c2", "c3"], "x_centroid": [1.0, 2, 2, 3], "y_centroid": [1.0, 2, 2, 3]}))),
        ("cells.csv", "twice", "c2"))
    yield "xenium: centroid as text", lambda t: Bad(lambda: read_xenium(_xenium(t, pd.DataFrame(
        {"cell_id": ["c1", "c2", "c3"], "x_centroid": ["a", "b", "c"], "y_centroid": [1.0, 2, 3]}))),
        ("x_centroid",))
    yield "xenium: experiment pixel size 0", lambda t: Bad(lambda: read_xenium(_with_experiment(_xenium(t), 0)),
                                                           ("pixel_size",))
    yield "visium: lowres scale factor 0", lambda t: Bad(lambda: read_spaceranger(_visium(t, scalefactors={
        "spot_diameter_fullres": 20.0, "tissue_lowres_scalef": 0}), load_images=False),
        ("scalefactors_json.json", "tissue_lowres_scalef"))
    yield "visium: hires scale factor negative", lambda t: Bad(lambda: read_spaceranger(_visium(t, scalefactors={
        "spot_diameter_fullres": 20.0, "tissue_hires_scalef": -0.5}), load_images=False), ("tissue_hires_scalef",))
    yield "visium: scale factor NaN", lambda t: Bad(lambda: read_spaceranger(_visium_nan_scale(t), load_images=False),
                                                    ("tissue_lowres_scalef",))
    yield "visium: spot diameter 1e300", lambda t: Bad(lambda: read_spaceranger(_visium(t, scalefactors={
        "spot_diameter_fullres": 1e300}), load_images=False), ("spot_diameter_fullres",))
    yield "visium: corrupt lowres PNG", lambda t: Bad(lambda: read_spaceranger(_with_png(
        _visium(t), b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)), ("tissue_lowres_image.png",))
    yield "visium: truncated lowres PNG", lambda t: Bad(lambda: read_spaceranger(_with_png(
        _visium(t), _png(t / "x.png", 64, 64).read_bytes()[:60])), ("tissue_lowres_image.png",))
    yield "DCC: Code_Summary count is text", lambda t: Bad(lambda: read_dcc(_write(
        t / "a.dcc", "<Code_Summary>\nRTS1,abc\n</Code_Summary>\n")), ("a.dcc",))
    yield "PKC zip: bomb (1 GB of zeros)", lambda t: Bad(lambda: read_pkc(_zip_bomb(t)), ("pkcs.zip", "unpack"))
    yield "PKC zip: truncated", lambda t: Bad(lambda: read_pkc(_write(t / "k.zip", _zip_bytes()[:40])), ("k.zip",))
    yield "PKC zip: member not JSON", lambda t: Bad(lambda: read_pkc(_zip_with(t, b"{not json")), ("k.zip",))
    yield "GeoMx annotations: truncated xlsx", lambda t: Bad(lambda: read_geomx_ngs(_kit_truncated_xlsx(t)),
                                                             ("annotations.xlsx",))
    yield "GeoMx export: truncated workbook", lambda t: Bad(lambda: read_geomx_export(_truncated_workbook(t)),
                                                            ("export",))
    yield "OME: PhysicalSizeX negative", lambda t: Bad(lambda: read_multiplex_tiff(
        _ome(t / "a.ome.tif", np.zeros((2, 32, 32), np.uint8), "CYX", "-0.5")), ("a.ome.tif", "pixel size"))
    yield "OME: PhysicalSizeX NaN", lambda t: Bad(lambda: read_multiplex_tiff(
        _ome(t / "a.ome.tif", np.zeros((2, 32, 32), np.uint8), "CYX", "nan")), ("a.ome.tif", "pixel size"))
    yield "OME: Z stack", lambda t: Bad(lambda: read_multiplex_tiff(
        _ome(t / "z.ome.tif", np.zeros((3, 2, 32, 32), np.uint8), "ZCYX")), ("z.ome.tif", "z-planes"))
    yield "OME: time series", lambda t: Bad(lambda: read_multiplex_tiff(
        _ome(t / "t.ome.tif", np.zeros((4, 2, 32, 32), np.uint8), "TCYX")), ("t.ome.tif", "time points"))
    yield "h5ad: every count zero", lambda t: Bad(lambda: read_h5ad_spots(_h5ad(t, lambda a: _zero(a))), ("zero",))
    yield "h5ad: coordinates near float max", lambda t: Bad(lambda: read_h5ad_spots(_h5ad(t, lambda a: _far(a))),
                                                            ("spots.h5ad", "beyond"))
    # messy but usable
    yield "positions: columns reordered, read by header name", _positions_reordered
    yield "positions: UTF-8 BOM", _positions_bom
    yield "DCC: a Latin-1 byte in the header is tolerated", _dcc_latin1
    yield "GeoJSON: UTF-8 BOM", _geojson_bom
    yield "GMT: UTF-8 BOM does not corrupt the first set name", _gmt_bom


def _write(p: Path, data: str | bytes) -> Path:
    (p.write_bytes if isinstance(data, bytes) else p.write_text)(data)
    return p


def _truncated_mtx(t: Path) -> Path:
    folder = _mtx(t)
    p = folder / "matrix.mtx.gz"
    p.write_bytes(p.read_bytes()[:25])
    return folder


def _not_gzip(t: Path) -> Path:
    folder = _mtx(t)
    (folder / "matrix.mtx.gz").write_bytes(b"this is not gzip data at all")
    return folder


def _empty_features(t: Path) -> Path:
    folder = _mtx(t)
    (folder / "features.tsv.gz").write_bytes(gzip.compress(b""))
    return folder


def _with_experiment(folder: Path, px: float) -> Path:
    write_json(folder / "experiment.xenium", {"pixel_size": px})
    return folder


def _visium_nan_scale(t: Path) -> Path:
    outs = _visium(t)
    (outs / "spatial" / "scalefactors_json.json").write_text(
        '{"spot_diameter_fullres": 20.0, "tissue_lowres_scalef": NaN}')
    return outs


def _with_png(outs: Path, data: bytes) -> Path:
    (outs / "spatial" / "tissue_lowres_image.png").write_bytes(data)
    return outs


def _zip_bytes() -> bytes:
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("kit.pkc", json.dumps({"Name": "x", "Targets": []}) * 50)
    return buf.getvalue()


def _zip_with(t: Path, member: bytes) -> Path:
    p = t / "k.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("kit.pkc", member)
    return p


def _zip_bomb(t: Path) -> Path:
    p = t / "pkcs.zip"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("kit.pkc", "w", force_zip64=True) as fh:
            block = b"\0" * (16 * 1024**2)
            for _ in range(20):  # 320 MB unpacked, ~0.3 MB packed
                fh.write(block)
    return p


def _kit_truncated_xlsx(t: Path) -> Path:
    folder = t / "kit"
    folder.mkdir()
    (folder / "tiny.pkc").write_text(json.dumps({"Name": "tiny", "Targets": [
        {"DisplayName": "CD68", "CodeClass": "Endogenous", "Probes": [{"RTS_ID": "RTS1"}]}]}))
    (folder / "S1.dcc").write_text("<Header>\nFileVersion,0.01\n</Header>\n<Code_Summary>\nRTS1,4\n</Code_Summary>\n")
    pd.DataFrame({"Sample_ID": ["S1"], "segment": ["tumour"]}).to_excel(folder / "annotations.xlsx", index=False)
    data = (folder / "annotations.xlsx").read_bytes()
    (folder / "annotations.xlsx").write_bytes(data[:len(data) // 2])
    return folder


def _truncated_workbook(t: Path) -> Path:
    p = t / "export.xlsx"
    with pd.ExcelWriter(p) as w:
        pd.DataFrame({"SegmentDisplayName": ["a"], "ROICoordinateX": [1.0]}).to_excel(w, "SegmentProperties",
                                                                                       index=False)
        pd.DataFrame({"TargetName": ["CD68"], "a": [3]}).to_excel(w, "BioProbeCountMatrix", index=False)
    data = p.read_bytes()
    p.write_bytes(data[:len(data) - 300])
    return p


def _zero(a: ad.AnnData) -> None:
    a.X = np.zeros_like(a.X)


def _far(a: ad.AnnData) -> None:
    a.obsm["spatial"][2] = [1.7e308, 5.0]


def _positions_reordered(t: Path) -> None:
    outs = _visium(t, positions=pd.DataFrame({
        "pxl_col_in_fullres": [11, 21, 31], "barcode": BCS, "array_col": [0, 1, 2], "in_tissue": 1,
        "pxl_row_in_fullres": [10, 20, 30], "array_row": [0, 1, 2]}))
    spots = read_spaceranger(outs, load_images=False)
    np.testing.assert_array_equal(spots.xy, [[11, 10], [21, 20], [31, 30]])  # (x = col, y = row)


def _positions_bom(t: Path) -> None:
    outs = _visium(t)
    p = outs / "spatial" / "tissue_positions.csv"
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    assert list(read_tissue_positions(p).index) == BCS


def _dcc_latin1(t: Path) -> None:
    p = _write(t / "a.dcc", "<Header>\nFileVersion,0.01\n</Header>\n<Scan_Attributes>\nID,caf\xe9\n"
               "</Scan_Attributes>\n<Code_Summary>\nRTS1,4\nRTS2,7\n</Code_Summary>\n".encode("latin-1"))
    out = read_dcc(p)
    assert out["Scan_Attributes"]["ID"] == "caf\xe9"
    assert out["Code_Summary"].to_dict() == {"RTS1": 4, "RTS2": 7}


def _geojson_bom(t: Path) -> None:
    doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "A"},
           "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [9, 0], [9, 9], [0, 0]]]}}]}
    p = _write(t / "r.geojson", b"\xef\xbb\xbf" + json.dumps(doc).encode())
    assert [r.name for r in read_geojson(p)] == ["A"]


def _gmt_bom(t: Path) -> None:
    p = _write(t / "s.gmt", b"\xef\xbb\xbfMACRO\tdesc\tCD68\tCD163\n")
    assert [s.name for s in load_signatures(p)] == ["MACRO"]


# ---------------------------------------------------------------------------
# class 2: resources (blocking files, memory)
# ---------------------------------------------------------------------------
def resource_cases() -> Iterator[tuple[str, Case]]:
    yield "FIFO as the .h5ad spots", lambda t: Bad(lambda: read_h5ad_spots(_fifo(t, "s.h5ad")), ("s.h5ad", "pipe"))
    yield "FIFO as spots via the dispatcher", lambda t: Bad(
        lambda: read_spots_of_kind(_fifo(t, "s.h5ad"), "h5ad"), ("s.h5ad",))
    yield "FIFO as the signature", lambda t: Bad(lambda: load_signatures(_fifo(t, "s.gmt")), ("s.gmt", "pipe"))
    yield "FIFO as the ROI file", lambda t: Bad(lambda: read_geojson(_fifo(t, "r.geojson")), ("r.geojson", "pipe"))
    yield "FIFO as the image", lambda t: Bad(lambda: read_multiplex_tiff(_fifo(t, "i.ome.tif")), ("i.ome.tif", "pipe"))
    yield "FIFO as the session", lambda t: Bad(lambda: load_session(_fifo(t, "s.roiscore.json")), ("pipe",))
    yield "FIFO as tissue positions", lambda t: Bad(lambda: read_spaceranger(_fifo_positions(t), load_images=False),
                                                    ("tissue_positions.csv", "pipe"))
    yield "FIFO as the 10x matrix", lambda t: Bad(lambda: read_10x_h5(_fifo(t, "m.h5")), ("m.h5", "pipe"))
    yield "FIFO as a DCC", lambda t: Bad(lambda: read_dcc(_fifo(t, "a.dcc")), ("a.dcc", "pipe"))
    yield "device /dev/zero as the signature", lambda t: Bad(lambda: load_signatures("/dev/zero"), ("/dev/zero", "device"))
    yield "device /dev/zero as .h5ad spots", lambda t: Bad(lambda: read_h5ad_spots("/dev/zero"), ("device",))
    yield "PNG decompression bomb (header 60,000 x 60,000)", lambda t: Bad(lambda: read_spaceranger(_with_png(
        _visium(t), _png(t / "bomb.png", 60_000, 60_000, idat=zlib.compress(b"\0" * 1000)).read_bytes())),
        ("tissue_lowres_image.png", "GB"))
    yield "spot footprint would need terabytes", lambda t: Bad(lambda: footprint_fractions(
        _mask(), np.array([[5.0, 5.0]]), diameter_px=5e6), ("GB",))
    yield "a single-strip mask is decoded once, not once per group of spots", _strip_decoded_once
    yield "spot diameter implausible in a spot table", lambda t: Bad(
        lambda: SpotTable(_adata(), diameter_px=1e9), ("spot diameter",))


def _strip_decoded_once(t: Path) -> None:
    import dask.array as da

    from napari_roiscore.images.markers import MarkerMask

    decoded = []

    def decode(block: np.ndarray) -> np.ndarray:
        decoded.append(block.shape)
        return block > 0

    size = 3000  # one chunk, as tifffile gives a single-strip TIFF; spots spread over 9 tiles
    data = da.map_blocks(decode, da.ones((size, size), dtype=np.uint8, chunks=(size, size)), dtype=bool)
    mask = MarkerMask(data=data, level=0, downsample=(1.0, 1.0), threshold=0.5, method="user",
                      channel=0, channel_name="CD68")
    xy = np.array([[x, y] for x in range(100, size, 500) for y in range(100, size, 500)], dtype=float)
    fractions = footprint_fractions(mask, xy, diameter_px=20.0)
    assert np.allclose(fractions, 1.0)
    assert len([s for s in decoded if s == (size, size)]) == 1, decoded


def _fifo_positions(t: Path) -> Path:
    outs = _visium(t)
    (outs / "spatial" / "tissue_positions.csv").unlink()
    os.mkfifo(outs / "spatial" / "tissue_positions.csv")
    return outs


def _mask():
    from napari_roiscore.images.markers import MarkerMask

    return MarkerMask(data=np.ones((64, 64), bool), level=0, downsample=(1.0, 1.0), threshold=0.5, method="user",
                      channel=0, channel_name="CD68")


# ---------------------------------------------------------------------------
# class 3: numbers
# ---------------------------------------------------------------------------
def number_cases() -> Iterator[tuple[str, Case]]:
    yield "CSR with duplicate entries scores as its canonical form", _csr_duplicates
    yield "CSR with unsorted indices scores as its canonical form", _csr_unsorted
    yield "SEVERE CSR index past the gene count in a spot table (no segfault)", lambda t: Bad(
        lambda: SpotTable(_adata(X=_bad_csr()), diameter_px=10.0, provenance={"path": "x.h5ad"}),
        ("x.h5ad", "sparse indices"))
    yield "CSC index past the spot count in a spot table", lambda t: Bad(
        lambda: SpotTable(_adata(X=_bad_csc()), diameter_px=10.0),
        ("sparse indices",))
    yield "mtx: fractional counts refused like fractional h5ad", lambda t: Bad(
        lambda: read_10x_mtx(_mtx(t, body=(_real_mtx_header() + "2 3 2\n1 1 1.5\n2 2 3\n").encode())),
        ("matrix.mtx.gz", "fractions"))
    yield "mtx: negative counts", lambda t: Bad(
        lambda: read_10x_mtx(_mtx(t, entries="1 1 -4\n2 2 3\n")), ("matrix.mtx.gz", "negative"))
    yield "mtx: NaN count", lambda t: Bad(
        lambda: read_10x_mtx(_mtx(t, body=(_real_mtx_header() + "2 3 2\n1 1 nan\n2 2 3\n").encode())),
        ("matrix.mtx.gz", "NaN"))
    yield "mtx: duplicate entries are summed", _mtx_duplicates
    yield "weights all zero", lambda t: Bad(lambda: Signature("w", ("CD68", "CD163"), weights={"CD68": 0, "CD163": 0}),
                                            ("weight 0",))
    yield "weights for genes not in the signature", lambda t: Bad(
        lambda: Signature("w", ("CD68",), weights={"CD86": 2.0}), ("CD86", "not in the signature"))
    yield "coordinate NaN in a spot table", lambda t: Bad(lambda: SpotTable(_with_xy(np.nan), diameter_px=5.0),
                                                          ("NaN",))
    yield "coordinate near float max in a spot table", lambda t: Bad(
        lambda: SpotTable(_with_xy(1.79e308), diameter_px=5.0), ("beyond",))
    yield "negative spot diameter", lambda t: Bad(lambda: SpotTable(_adata(), diameter_px=-3.0), ("spot diameter",))
    yield "ROI names equal in their first 200 characters stay two ROIs", _long_names
    yield "ROI name of 5,000 characters is refused, not cut", lambda t: Bad(
        lambda: read_geojson(_geojson(t, [("N" * 5000, None)])), ("5,000 characters",))
    yield "SEVERE class split: 'X (stroma)' [tumour], 'X' [tumour], 'X' [stroma] stay apart", _class_split


def _bad_csr() -> sp.csr_matrix:
    m = sp.csr_matrix(np.random.default_rng(0).poisson(2.0, (20, 8)).astype(np.float32))
    m.indices[3] = 500  # past the 8 genes
    return m


def _bad_csc() -> sp.csc_matrix:
    m = sp.csc_matrix(np.random.default_rng(0).poisson(2.0, (20, 8)).astype(np.float32))
    m.indices[3] = 500  # past the 20 spots
    return m


def _scores_equal(X_messy: sp.csr_matrix) -> None:
    canonical = X_messy.copy()
    canonical.sum_duplicates()
    sig = Signature("s", ("GENE1", "GENE2", "GENE3"))
    for method in ("mean_z", "singscore"):
        a = score_spots(SpotTable(_adata(X=X_messy.copy()), diameter_px=10.0), sig, method).values
        b = score_spots(SpotTable(_adata(X=canonical.toarray()), diameter_px=10.0), sig, method).values
        np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=method)


def _csr_duplicates(t: Path) -> None:
    dense = np.random.default_rng(1).poisson(2.0, (20, 8)).astype(np.float32)
    rows, cols = np.nonzero(dense)
    vals = dense[rows, cols]
    half = np.floor(vals / 2)  # every count stored twice, as two whole parts
    r, c, d = np.concatenate([rows, rows]), np.concatenate([cols, cols]), np.concatenate([half, vals - half])
    order = np.argsort(r, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=20))])
    X = sp.csr_matrix((d[order], c[order], indptr), shape=dense.shape)
    assert not X.has_canonical_format
    _scores_equal(X)


def _csr_unsorted(t: Path) -> None:
    dense = np.random.default_rng(2).poisson(2.0, (20, 8)).astype(np.float32)
    X = sp.csr_matrix(dense)
    for i in range(20):  # reverse each row's entries
        s, e = X.indptr[i], X.indptr[i + 1]
        X.indices[s:e] = X.indices[s:e][::-1].copy()
        X.data[s:e] = X.data[s:e][::-1].copy()
    X.has_sorted_indices = False
    _scores_equal(X)


def _mtx_duplicates(t: Path) -> None:
    cm = read_10x_mtx(_mtx(t, entries="1 1 1\n1 1 2\n2 2 3\n"))
    assert cm.counts.toarray()[0, 0] == 3 and cm.counts.has_canonical_format


def _with_xy(value: float) -> ad.AnnData:
    a = _adata()
    a.obsm["spatial"][4] = [value, 1.0]
    return a


def _geojson(t: Path, named: list[tuple[str, str | None]]) -> Path:
    feats = []
    for k, (name, cls) in enumerate(named):
        props = {"name": name}
        if cls:
            props["classification"] = {"name": cls}
        x = 20 * k
        feats.append({"type": "Feature", "properties": props, "geometry": {
            "type": "Polygon", "coordinates": [[[x, 0], [x + 10, 0], [x + 10, 10], [x, 10], [x, 0]]]}})
    return _write(t / "r.geojson", json.dumps({"type": "FeatureCollection", "features": feats}))


def _long_names(t: Path) -> None:
    base = "A" * 200
    rois = read_geojson(_geojson(t, [(base + "1", None), (base + "2", None)]))
    assert [r.name for r in rois] == [base + "1", base + "2"]


def _class_split(t: Path) -> None:
    rois = read_geojson(_geojson(t, [("X (stroma)", "Tumor"), ("X", "Tumor"), ("X", "Stroma")]))
    by_name = {r.name: r for r in rois}
    assert len(rois) == 3, [r.name for r in rois]
    assert by_name["X (stroma)"].roi_class == "tumour" and by_name["X (stroma)"].geometry.area == 100
    assert by_name["X"].roi_class == "tumour"
    stroma = [r for r in rois if r.roi_class == "stroma"]
    assert len(stroma) == 1 and stroma[0].name not in ("X", "X (stroma)")
    assert stroma[0].geometry.bounds[0] == 40  # the third feature, on its own
    # and the same in memory, with a second stroma part joining its own split ROI
    extra = Roi("X", "stroma", Polygon([(90, 0), (95, 0), (95, 5)]))
    merged = merge_same_named([*rois[:2], Roi("X", "stroma", stroma[0].geometry), extra])
    assert [r.roi_class for r in merged].count("stroma") == 1


# ---------------------------------------------------------------------------
# class 4: messages
# ---------------------------------------------------------------------------
def message_cases() -> Iterator[tuple[str, Case]]:
    yield "a 500 KB problem is capped", _message_capped
    yield "limited_list: first items and 'and N more'", _limited
    yield "10,000 duplicate barcodes: a short message", _many_duplicates
    yield "CSV export: formula cells escaped", _formula_escaped
    yield "CSV export: numbers (negative scores) untouched", _numbers_untouched
    yield "library error of a reader names the file", lambda t: Bad(
        lambda: read_10x_mtx(_truncated_mtx(t)), ("matrix.mtx.gz", "cannot be read"))
    yield "library error through the dispatcher names the spots", lambda t: Bad(
        lambda: read_spots_of_kind(_visium_broken_h5(t), "visium", load_images=False), ("filtered_feature_bc_matrix.h5",))
    yield "reader error message is one line", _one_line


def _message_capped(t: Path) -> None:
    err = RoiScoreError("x" * 500_000, "y" * 10_000)
    assert len(str(err)) < 4500 and "more characters left out" in str(err)


def _limited(t: Path) -> None:
    assert limited_list(range(10), 3, quote=False) == "0, 1, 2 and 7 more"
    assert limited_list(["a"]) == "'a'"


def _many_duplicates(t: Path) -> None:
    n = 10_000
    pos = pd.DataFrame({"barcode": [f"B{i // 2}" for i in range(2 * n)], "in_tissue": 1, "array_row": 0,
                        "array_col": 0, "pxl_row_in_fullres": 1, "pxl_col_in_fullres": 1})
    p = t / "tissue_positions.csv"
    pos.to_csv(p, index=False)
    with pytest.raises(RoiScoreError) as info:
        read_tissue_positions(p)
    assert len(str(info.value)) < 600 and "10,000" in str(info.value) and "and" in str(info.value)


def _formula_escaped(t: Path) -> None:
    table = pd.DataFrame({"roi": ["=HYPERLINK(\"http://x\")", "+1", "-cmd", "@SUM(A1)", "plain"],
                          "class": ["tumour"] * 5, "score": [0.1, -0.5, 0.2, 0.3, 0.4]})
    p = scores_csv(table, None, t / "s.csv")
    back = pd.read_csv(p, dtype=str, keep_default_na=False)
    assert back["roi"].tolist() == ["'=HYPERLINK(\"http://x\")", "'+1", "'-cmd", "'@SUM(A1)", "plain"]


def _numbers_untouched(t: Path) -> None:
    table = pd.DataFrame({"roi": ["a"], "score": [-0.5], "spots": [-1]})
    back = pd.read_csv(scores_csv(table, None, t / "s.csv"))
    assert back["score"].tolist() == [-0.5] and back["spots"].tolist() == [-1]


def _visium_broken_h5(t: Path) -> Path:
    outs = _visium(t)
    (outs / "filtered_feature_bc_matrix.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    return outs


def _one_line(t: Path) -> None:
    with pytest.raises(RoiScoreError) as info:
        read_10x_mtx(_not_gzip(t))
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------
# class 5: outputs
# ---------------------------------------------------------------------------
def output_cases() -> Iterator[tuple[str, Case]]:
    yield "output equal to an input", lambda t: Bad(
        lambda: check_outputs([_write(t / "in.csv", "x")], [t / "in.csv"]), ("in.csv", "destroy"))
    yield "output symlinked to an input", lambda t: Bad(
        lambda: check_outputs([_link(t)], [t / "data.h5ad"]), ("link.csv", "data.h5ad"))
    yield "output inside an input folder", lambda t: Bad(
        lambda: check_outputs([_visium(t) / "spatial" / "tissue_positions.csv"], [t / "outs"]),
        ("tissue_positions.csv",))
    yield "output is a folder", lambda t: Bad(lambda: check_outputs([t]), ("a folder",))
    yield "output is a FIFO (would hang)", lambda t: Bad(lambda: scores_csv(_table(), None, _fifo(t, "o.csv")),
                                                         ("o.csv", "pipe"))
    yield "output is a device", lambda t: Bad(lambda: check_outputs(["/dev/null"]), ("/dev/null", "device"))
    yield "two outputs are the same file", lambda t: Bad(lambda: check_outputs([t / "a.csv", t / "b/../a.csv"]),
                                                         ("same file",))
    yield "SEVERE session saved over its spots file", _session_over_spots
    yield "annotated h5ad over the spots read in this session", _annotated_over_read_spots
    yield "ROI export over the ROI input", _geojson_over_input
    yield "report: PNG over an input writes neither PNG nor PDF", _report_over_input
    yield "all or nothing: a failing second output leaves the first untouched", _all_or_nothing
    yield "scores CSV over the signature input", lambda t: Bad(
        lambda: scores_csv(_table(), None, _write(t / "sig.gmt", "A\t\tCD68\n"), inputs=[t / "sig.gmt"]), ("sig.gmt",))


def _link(t: Path) -> Path:
    _write(t / "data.h5ad", "x")
    (t / "link.csv").symlink_to(t / "data.h5ad")
    return t / "link.csv"


def _session_over_spots(t: Path) -> None:
    spots = _h5ad(t)
    before = spots.read_bytes()
    with pytest.raises(RoiScoreError, match="spots.h5ad.*destroy"):
        save_session(spots, spots=spots, rois=_rois(), signature=Signature("s", ("GENE1",)))
    assert spots.read_bytes() == before
    save_session(t / "ok.roiscore.json", spots=spots, rois=_rois(), signature=Signature("s", ("GENE1",)))


def _annotated_over_read_spots(t: Path) -> None:
    path = _h5ad(t)
    spots = read_spots_of_kind(path, "h5ad")
    before = path.read_bytes()
    with pytest.raises(RoiScoreError, match="read in this session"):
        write_annotated_h5ad(spots.adata, path)
    assert path.read_bytes() == before


def _geojson_over_input(t: Path) -> None:
    p = _geojson(t, [("A", None)])
    before = p.read_bytes()
    with pytest.raises(RoiScoreError, match="r.geojson"):
        write_geojson(_rois(), p, inputs=[p])
    assert p.read_bytes() == before


def _report_over_input(t: Path) -> None:
    png = _write(t / "rep.png", b"input image")
    with pytest.raises(RoiScoreError, match="rep.png"):
        write_report(t / "rep", view=None, table=_table(), values={"004": np.array([0.1])},
                     classes={"004": "tumour"}, metadata={}, inputs=[png])
    assert png.read_bytes() == b"input image" and not (t / "rep.pdf").exists()


def _all_or_nothing(t: Path) -> None:
    first = _write(t / "a.csv", "old a")

    def fail(p: Path) -> None:
        p.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_all([(first, lambda p: p.write_text("new a")), (t / "b.csv", fail)])
    assert first.read_text() == "old a" and not (t / "b.csv").exists()
    assert sorted(x.name for x in t.iterdir()) == ["a.csv"]


# ---------------------------------------------------------------------------
# class 6: autosave
# ---------------------------------------------------------------------------
def autosave_cases() -> Iterator[tuple[str, Case]]:
    ill_typed = {
        "SEVERE classes is a number": {"classes": 3},
        "classes is null": {"classes": None},
        "classes holds a number": {"classes": ["tumour", 7]},
        "saved_at is a number": {"saved_at": 12},
        "extra is a list": {"extra": [1]},
        "data is text": {"data": "x"},
    }
    for name, meta in ill_typed.items():
        yield f"sidecar {name}: kept aside, reported, never overwritten", _aside_case(meta)
    yield "sidecar metadata is a list", _aside_case(None, top={"roiscore_autosave": [1]})
    yield "sidecar bin is an object", _aside_case(None, top={"roiscore_deleted": {"a": 1}})
    yield "sidecar features not a list", _aside_case(None, top={"features": {"a": 1}})
    yield "sidecar binary garbage", _aside_case(None, raw=b"\x00\xff" * 50)
    yield "save over an ill-typed sidecar never loaded: set aside with a warning", _save_over_ill_typed
    yield "sidecar changed by another program: set aside with a warning", _changed_elsewhere
    yield "two viewers on the same data: the second writes its own sidecar, with a warning", _two_viewers
    yield "a stale lock (its process is gone) is taken over", _stale_lock


def _sidecar_doc(meta: dict | None = None, top: dict | None = None) -> dict:
    doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "keep-me"},
           "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [9, 0], [9, 9], [0, 0]]]}}],
           "roiscore_autosave": {"version": 1, "saved_at": "2025-01-01T00:00:00+00:00", "classes": ["tumour"],
                                 **(meta or {})}}
    doc.update(top or {})
    return doc


def _aside_case(meta: dict | None, top: dict | None = None, raw: bytes | None = None) -> Case:
    def case(t: Path) -> None:
        data = _write(t / "slide.h5ad", "data")
        side = sidecar_path(data)
        content = raw if raw is not None else json.dumps(_sidecar_doc(meta, top)).encode()
        side.write_bytes(content)
        with pytest.raises(RoiScoreError, match="kept as") as info:
            load_autosave(data)
        assert type(info.value) is RoiScoreError
        aside = [p for p in t.iterdir() if ".unreadable-" in p.name]
        assert len(aside) == 1 and aside[0].read_bytes() == content, "the damaged sidecar is kept, unchanged"
        assert aside[0].name in str(info.value)
        save_autosave(_rois(), data)  # the next autosave starts afresh beside it
        assert aside[0].read_bytes() == content
        assert [r.name for r in load_autosave(data).rois] == ["004"]
    return case


def _save_over_ill_typed(t: Path) -> None:
    data = _write(t / "slide.h5ad", "data")
    content = json.dumps(_sidecar_doc({"classes": 5})).encode()
    sidecar_path(data).write_bytes(content)
    with pytest.warns(AutosaveWarning, match="kept as"):
        save_autosave(_rois(), data)
    aside = [p for p in t.iterdir() if ".unreadable-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == content


def _changed_elsewhere(t: Path) -> None:
    data = _write(t / "slide.h5ad", "data")
    side = save_autosave(_rois(), data)
    other = json.dumps(_sidecar_doc()).encode()
    side.write_bytes(other)  # another program (or napari) wrote it meanwhile
    with pytest.warns(AutosaveWarning, match="changed by another program"):
        save_autosave(_rois(), data)
    aside = [p for p in t.iterdir() if ".changed-elsewhere-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == other


_HOLDER = """
import sys, time
sys.path.insert(0, {src!r})
from napari_roiscore.rois.autosave import save_autosave
from napari_roiscore.rois.roi import Roi
from shapely.geometry import Polygon
save_autosave([Roi("first-viewer", "tumour", Polygon([(0, 0), (5, 0), (5, 5)]))], {data!r})
print("ready", flush=True)
time.sleep(60)
"""


def _two_viewers(t: Path) -> None:
    data = _write(t / "slide.h5ad", "data")
    code = _HOLDER.format(src=str(ROOT / "src"), data=str(data))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.warns(AutosaveWarning, match="Another napari"):
            mine = save_autosave(_rois(), data)
        assert mine != sidecar_path(data) and mine.name.endswith(".roiscore-autosave.geojson")
        assert [r.name for r in load_autosave(data).rois] == ["first-viewer"], "the first viewer's autosave survives"
        assert json.loads(mine.read_text())["features"][0]["properties"]["name"] == "004"
    finally:
        proc.kill()
        proc.wait()


def _stale_lock(t: Path) -> None:
    import socket

    data = _write(t / "slide.h5ad", "data")
    side = sidecar_path(data)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    side.with_name(side.name + ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", AutosaveWarning)
        assert save_autosave(_rois(), data) == side


# ---------------------------------------------------------------------------
# the parametrised corpus
# ---------------------------------------------------------------------------
CLASSES: dict[str, Callable[[], Iterator[tuple[str, Case]]]] = {
    "readers": reader_cases, "resources": resource_cases, "numbers": number_cases,
    "messages": message_cases, "outputs": output_cases, "autosave": autosave_cases,
}
CASES = {f"{cls}: {name}": fn for cls, gen in CLASSES.items() for name, fn in gen()}


@pytest.mark.parametrize("case", list(CASES))
def test_second_corpus(case, tmp_path):
    _check(CASES[case], tmp_path)


def test_second_corpus_size_per_class():
    counts = {cls: sum(1 for _ in gen()) for cls, gen in CLASSES.items()}
    assert sum(counts.values()) >= 80, counts
    assert all(n >= 8 for n in counts.values()), counts
    assert len(CASES) == sum(counts.values()), "case names are unique"


def test_severe_h5_segfault_case_in_a_subprocess(tmp_path):
    """The issue's segfault: a 10x .h5 whose indices point past the features, read and scored in a
    child process (a segfault there fails this test instead of killing the run)."""
    outs = _visium(tmp_path)
    with h5py.File(outs / "filtered_feature_bc_matrix.h5", "r+") as f:
        _replace(f["matrix"], "indices", np.array([0, 70_000, 1, 0], np.int64))
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'src')!r})\n"
            "from napari_roiscore.errors import RoiScoreError\n"
            "from napari_roiscore.readers.visium import read_spaceranger\n"
            "from napari_roiscore.scoring.methods import score_spots\n"
            "from napari_roiscore.scoring.signature import Signature\n"
            "try:\n"
            f"    s = read_spaceranger({str(outs)!r}, load_images=False)\n"
            "    score_spots(s, Signature('x', ('CD68', 'CD163')), 'singscore')\n"
            "except RoiScoreError as e:\n"
            "    print('REFUSED', e); sys.exit(3)\n")
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 3, (res.returncode, res.stdout[-500:], res.stderr[-1500:])
    assert "filtered_feature_bc_matrix.h5" in res.stdout and "sparse indices" in res.stdout
    assert time.monotonic() - start < 120
