"""The Export tab's "Save ROIs into a SpatialData store…" (issue 14, item 5)."""

from __future__ import annotations

import importlib.util

import pytest

HAS_SPATIALDATA = importlib.util.find_spec("spatialdata") is not None


def test_button_says_why_it_is_off_without_the_extra(sample_viewer):
    _, w = sample_viewer
    button = w.export_tab.spatialdata_button
    if HAS_SPATIALDATA:
        assert button.enabled
    else:
        assert not button.enabled
        assert "napari-roiscore[spatialdata]" in button.tooltip
    assert w.export_tab._default_store().endswith(".zarr")


def test_save_writes_every_roi_with_class_and_score(sample_viewer, tmp_path):
    pytest.importorskip("spatialdata")
    from napari_roiscore.readers.spatialdata_rois import read_rois_from_spatialdata

    _, w = sample_viewer
    store = w.export_tab.save_spatialdata(tmp_path / "sample.zarr")
    rois, obs = read_rois_from_spatialdata(store)
    shown = w.state.current_rois()
    assert sorted((r.name, r.roi_class) for r in rois) == sorted((r.name, r.roi_class) for r in shown)
    table = w.state.last_table.set_index("roi")
    assert obs.set_index("name")["score"].astype(float).loc[table.index].tolist() == pytest.approx(
        table["score"].tolist(), rel=1e-12)
