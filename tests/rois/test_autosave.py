from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest
from shapely.geometry import Polygon

from napari_roiscore.rois.autosave import (
    discard_autosave,
    load_autosave,
    save_autosave,
    sidecar_path,
)
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.roi import Roi
from napari_roiscore.rois.geojson import read_geojson, rois_to_geojson



@pytest.fixture(autouse=True)
def _autosave_rules_as_users_get_them(monkeypatch):
    """These tests check where the sidecar goes: without the test run's override folder."""
    monkeypatch.delenv("NAPARI_ROISCORE_AUTOSAVE_DIR", raising=False)


def _rois() -> list[Roi]:
    donut = Polygon([(0, 0), (100, 0), (100, 100), (0, 100)], [[(40, 40), (60, 40), (60, 60), (40, 60)]])
    return [
        Roi("004", "tumour", donut),
        Roi.from_xy("007", "stroma", np.array([[200.5, 10], [260, 15], [250, 80]])),
        Roi.from_xy("x1", "necrosis", np.array([[300, 300], [320, 300], [320, 330]])),
    ]


@pytest.fixture
def data_file(tmp_path):
    p = tmp_path / "slide_spots.h5ad"
    p.write_bytes(b"not really h5ad, only its name and size matter here")
    return p


def test_sidecar_path(tmp_path):
    assert sidecar_path(tmp_path / "a.h5ad") == tmp_path / "a.h5ad.roiscore-autosave.geojson"
    # a Space Ranger folder: the sidecar sits next to it, not inside
    assert sidecar_path(tmp_path / "outs") == tmp_path / "outs.roiscore-autosave.geojson"
    with pytest.raises(RoiScoreError):
        sidecar_path("")


def test_round_trip(data_file):
    assert load_autosave(data_file) is None
    when = datetime(2025, 3, 4, 12, 30, tzinfo=timezone.utc)
    path = save_autosave(_rois(), data_file, classes=["tumour", "stroma", "immune"],
                         extra={"signature": "Macrophage genes", "cd68_threshold": 79}, now=when)
    assert path == sidecar_path(data_file) and path.is_file()
    state = load_autosave(data_file)
    assert state is not None
    assert [(r.name, r.roi_class) for r in state.rois] == [(r.name, r.roi_class) for r in _rois()]
    for a, b in zip(state.rois, _rois()):
        assert a.geometry.equals(b.geometry)
    assert len(state.rois[0].geometry.interiors) == 1  # hole kept
    # user class without ROIs is remembered; classes in use are added
    assert state.classes == ["tumour", "stroma", "immune", "necrosis"]
    assert state.saved_at == when
    assert state.extra == {"signature": "Macrophage genes", "cd68_threshold": 79}
    assert not state.data_changed
    assert "3 ROIs (tumour, stroma, necrosis) saved 2025-03-04 12:30 UTC" == state.summary
    # the sidecar is plain QuPath-style GeoJSON too
    assert [r.name for r in read_geojson(path)] == ["004", "007", "x1"]
    doc = json.loads(path.read_text())
    assert doc["type"] == "FeatureCollection" and doc["roiscore_autosave"]["version"] == 1


def test_overwrite_and_data_change(data_file):
    save_autosave(_rois(), data_file)
    save_autosave(_rois()[:1], data_file)
    state = load_autosave(data_file)
    assert [r.name for r in state.rois] == ["004"]
    assert state.classes[:2] == ["tumour", "stroma"]
    data_file.write_bytes(b"different content, different size")
    assert load_autosave(data_file).data_changed
    assert "changed" in load_autosave(data_file).summary


@pytest.mark.parametrize("bad_extra", [{"z": object()}, {"z": float("nan")}])
def test_failed_write_keeps_previous_sidecar(data_file, bad_extra):
    first = save_autosave(_rois(), data_file)
    before = first.read_bytes()
    # the writer fails part-way (the features are already streamed to the temporary file)
    with pytest.raises((TypeError, ValueError)):
        save_autosave(_rois()[:1], data_file, extra=bad_extra)
    assert first.read_bytes() == before
    assert [r.name for r in load_autosave(data_file).rois] == ["004", "007", "x1"]
    leftovers = [p.name for p in data_file.parent.iterdir() if not p.name.endswith(".lock")]  # the writer lock
    assert sorted(leftovers) == sorted([data_file.name, first.name])


def test_unreadable_sidecar_and_discard(data_file):
    p = sidecar_path(data_file)
    p.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    with pytest.raises(RoiScoreError, match="roiscore-autosave.geojson.*kept as.*unreadable-.*Move or delete"):
        load_autosave(data_file)
    # kept aside, never deleted: the next autosave starts afresh beside it
    aside = [q for q in p.parent.iterdir() if ".unreadable-" in q.name]
    assert len(aside) == 1 and aside[0].read_text(encoding="utf-8").endswith("[")
    assert load_autosave(data_file) is None
    save_autosave(_rois(), data_file)
    assert discard_autosave(data_file) is True
    assert discard_autosave(data_file) is False
    assert load_autosave(data_file) is None


def test_empty_roi_list_and_missing_metadata(data_file):
    save_autosave([], data_file)
    state = load_autosave(data_file)
    assert state.rois == [] and state.classes == ["tumour", "stroma"]
    # a plain GeoJSON dropped in place (no roiscore metadata) still loads
    p = sidecar_path(data_file)
    doc = json.loads(p.read_text())
    doc.pop("roiscore_autosave")
    doc["features"] = rois_to_geojson(_rois())["features"]
    p.write_text(json.dumps(doc))
    state = load_autosave(data_file)
    assert len(state.rois) == 3 and state.saved_at.tzinfo is not None


def test_sidecar_goes_to_state_dir_for_shipped_sample_and_override(tmp_path, monkeypatch):
    from napari_roiscore.spots.sample import SAMPLE_DIR

    monkeypatch.delenv("NAPARI_ROISCORE_AUTOSAVE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    p = sidecar_path(SAMPLE_DIR / "sample_spots.h5ad")
    assert SAMPLE_DIR.resolve() not in p.resolve().parents  # never write into the plugin
    assert p.name.startswith("sample_spots.h5ad.") and p.name.endswith(".roiscore-autosave.geojson")
    monkeypatch.setenv("NAPARI_ROISCORE_AUTOSAVE_DIR", str(tmp_path / "auto"))
    p2 = sidecar_path(tmp_path / "x.h5ad")
    assert p2.parent == tmp_path / "auto"
    assert sidecar_path(tmp_path / "x.h5ad") == p2  # stable
    assert sidecar_path(tmp_path / "y" / "x.h5ad") != p2  # same name, other folder


def test_folder_marked_read_only_is_never_written_even_by_root(tmp_path, monkeypatch):
    """Root may write into an r-x folder; the autosave must still go to the state folder."""
    monkeypatch.delenv("NAPARI_ROISCORE_AUTOSAVE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    data = tmp_path / "shared"
    data.mkdir()
    (data / "x.h5ad").write_bytes(b"")
    assert sidecar_path(data / "x.h5ad").parent == data  # writable: next to the data
    data.chmod(0o555)
    try:
        p = sidecar_path(data / "x.h5ad")
        assert data not in p.parents and p.name.startswith("x.h5ad.")
    finally:
        data.chmod(0o755)


def test_bin_keeps_deleted_rois_not_renamed_or_moved_ones():
    from shapely.affinity import translate

    from napari_roiscore.rois.autosave import update_bin

    a, b, c = _rois()
    # moving b (same name, new outline) and renaming c (same outline): nothing is deleted
    moved = Roi(b.name, b.roi_class, translate(b.geometry, 5, 0))
    assert update_bin([a, b, c], [a, moved, Roi("renamed", c.roi_class, c.geometry)], []) == []
    # deleting everything puts all three in the bin, in order
    binned = update_bin([a, b, c], [], [])
    assert [r.name for r in binned] == ["004", "007", "x1"]
    # a restored ROI leaves the bin; deleting it again makes it the most recent
    binned = update_bin([], [b], binned)
    assert [r.name for r in binned] == ["004", "x1"]
    binned = update_bin([b], [], binned)
    assert [r.name for r in binned] == ["004", "x1", "007"]
    assert [r.name for r in update_bin([], [], binned, max_deleted=2)] == ["x1", "007"]


def test_bin_round_trips_through_the_sidecar(data_file):
    from napari_roiscore.rois.autosave import update_bin

    rois = _rois()
    save_autosave(rois, data_file)
    state = load_autosave(data_file)
    assert state.deleted == []
    binned = update_bin(state.rois, [], state.deleted)  # the user deleted every ROI
    save_autosave([], data_file, deleted=binned)
    state = load_autosave(data_file)
    assert state.rois == []
    assert [r.name for r in state.deleted] == ["004", "007", "x1"]
    assert len(state.deleted[0].geometry.interiors) == 1  # the donut keeps its hole in the bin
    # QuPath reads only "features": the deleted ROIs do not come back there
    assert read_geojson(sidecar_path(data_file)) == []
    # a damaged bin does not cost the ROIs
    doc = json.loads(sidecar_path(data_file).read_text())
    doc["features"] = rois_to_geojson(rois[:1])["features"]
    doc["roiscore_deleted"] = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]}}]
    sidecar_path(data_file).write_text(json.dumps(doc))
    state = load_autosave(data_file)
    assert [r.name for r in state.rois] == ["004"] and state.deleted == []
