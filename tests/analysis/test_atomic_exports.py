"""Every export is atomic: a failure while writing leaves the previous file as it was."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Polygon

import napari_roiscore._atomic as atomic
from napari_roiscore._atomic import atomic_write
from napari_roiscore.rois.autosave import save_autosave, sidecar_path
from napari_roiscore.analysis.export import annotate_spots, scores_csv, write_annotated_h5ad
from napari_roiscore.analysis.report import write_report
from napari_roiscore.rois.roi import Roi
from napari_roiscore.rois.geojson import write_geojson
from napari_roiscore.spots.sample import open_sample

OLD = b"previous version - must survive a failed write\n"


class DiskFull(OSError):
    pass


def _rois() -> list[Roi]:
    return [Roi("004", "tumour", Polygon([(0, 0), (50, 0), (50, 50), (0, 50)]))]


def _table() -> pd.DataFrame:
    return pd.DataFrame({"roi": ["004"], "class": ["tumour"], "spots": [3], "score": [0.5],
                         "median": [0.4], "status": ["ok"]})


def _exports(tmp: Path) -> dict[str, tuple]:
    spots = open_sample().spots
    data = tmp / "spots.h5ad"
    data.write_bytes(b"data")
    return {
        "geojson": (tmp / "rois.geojson", lambda p: write_geojson(_rois(), p)),
        "csv": (tmp / "scores.csv", lambda p: scores_csv(_table(), None, p)),
        "h5ad": (tmp / "out.h5ad", lambda p: write_annotated_h5ad(
            annotate_spots(spots, _rois(), lambda r: np.array([0, 1])), p)),
        "report png": (tmp / "report.png", lambda p: write_report(
            p.with_suffix(""), view=None, table=_table(), values={"004": np.array([0.1, 0.5])},
            classes={"004": "tumour"}, metadata={})),
        "autosave": (sidecar_path(data), lambda p: save_autosave(_rois(), data)),
    }


@pytest.mark.parametrize("kind", ["geojson", "csv", "h5ad", "report png", "autosave"])
def test_failed_export_leaves_previous_file(kind, tmp_path, monkeypatch):
    monkeypatch.delenv("NAPARI_ROISCORE_AUTOSAVE_DIR", raising=False)
    path, export = _exports(tmp_path)[kind]
    old = OLD
    if kind == "autosave":  # an unreadable sidecar is set aside (tests/test_bad_inputs_2.py): start from a valid one
        export(path)
        old = path.read_bytes()
    path.write_bytes(old)
    before = {p for p in tmp_path.iterdir() if p.suffix != ".lock"}

    def full_disk(fd):
        raise DiskFull("no space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_disk)  # fails after writing the temp file, before the rename
    with pytest.raises(DiskFull):
        export(path)
    assert path.read_bytes() == old, f"{kind} wrote the file in place"
    assert {p for p in tmp_path.iterdir() if p.suffix != ".lock"} == before, "temporary file left behind"
    monkeypatch.undo()
    monkeypatch.delenv("NAPARI_ROISCORE_AUTOSAVE_DIR", raising=False)
    export(path)  # and without the failure, the file is replaced
    assert path.read_bytes() != old


def test_writer_failing_midway_leaves_old_file(tmp_path):
    path = tmp_path / "table.csv"
    path.write_bytes(OLD)

    def half(p: Path) -> None:
        p.write_text("roi,score\n004,")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(path, half)
    assert path.read_bytes() == OLD
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


@pytest.mark.parametrize("kind", ["geojson", "csv", "h5ad", "report png", "autosave"])
def test_export_has_ordinary_file_permissions(kind, tmp_path, monkeypatch):
    """Exports were owner-only (0600, the temporary file's mode): colleagues could not read them."""
    monkeypatch.delenv("NAPARI_ROISCORE_AUTOSAVE_DIR", raising=False)
    path, export = _exports(tmp_path)[kind]
    old_umask = os.umask(0o022)
    try:
        export(path)
        assert path.stat().st_mode & 0o777 == 0o644
        path.chmod(0o640)  # a file being replaced keeps the mode its owner gave it
        export(path)
        assert path.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old_umask)
