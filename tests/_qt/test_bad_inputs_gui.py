"""Bad files in a real napari viewer: a clean error, the viewer keeps working, ROIs untouched."""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.notifications import notification_manager

from napari_roiscore.errors import RoiScoreError
from test_bad_inputs import REJECTED

from gui_helpers import scores_ready

pytestmark = pytest.mark.gui

#: corpus cases whose file the napari-roiscore reader accepts by name (.h5ad / .geojson)
READER_CASES = [
    "h5ad: empty file",
    "h5ad: truncated to half",
    "h5ad: random bytes",
    "h5ad: a TIFF renamed .h5ad",
    "h5ad: negative counts",
    "h5ad: duplicate barcodes",
    "h5ad: directory instead of file",
    "geojson: not JSON",
    "geojson: nesting 10^5 levels deep",
    "geojson: huge integer 10^400",
    "geojson: Point geometry",
    "geojson: binary, not UTF-8",
]


def _error_text(err: BaseException) -> str:
    """The message the user sees; napari may wrap the plugin's error in its own ReaderPluginError."""
    from napari.errors import ReaderPluginError

    if isinstance(err, ReaderPluginError):
        cause = err.__cause__ or err.__context__
        assert isinstance(cause, RoiScoreError), f"napari wrapped {type(cause).__name__}, not RoiScoreError"
        return f"{err} {cause}"
    assert type(err) is RoiScoreError, f"{type(err).__name__}: {err}"
    return str(err)


def _roi_snapshot(layer) -> tuple:
    return ([np.array(d, copy=True) for d in layer.data], list(layer.features["name"]),
            list(layer.features["class"]))


def test_corrupt_files_give_clean_errors_and_viewer_keeps_working(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-roiscore", "multiplex_visium")
    rois = viewer.layers["ROIs"]
    before = _roi_snapshot(rois)
    n_layers = len(viewer.layers)
    for i, case in enumerate(READER_CASES):
        folder = tmp_path / f"case{i}"
        folder.mkdir()
        bad = REJECTED[case](folder)
        path = folder / bad.mentions[0]
        with pytest.raises(Exception) as info:  # noqa: PT011 - the type is checked below
            viewer.open(str(path), plugin="napari-roiscore")
        text = _error_text(info.value)
        assert path.name in text and "Fix:" in text, (case, text)
        assert len(viewer.layers) == n_layers, f"{case}: a half-read layer was added"
    # the viewer still works: add and draw a layer
    viewer.add_points(np.array([[10.0, 10.0], [20.0, 30.0]]), name="after errors")
    assert len(viewer.layers) == n_layers + 1
    viewer.reset_view()
    assert viewer.screenshot(canvas_only=True, flash=False).size > 0
    # and the existing ROI layer is untouched
    after = _roi_snapshot(rois)
    assert after[1:] == before[1:]
    assert all(np.array_equal(a, b) for a, b in zip(after[0], before[0]))


@pytest.mark.parametrize("text", ["", " ,;; ", "NOT_A_GENE, ALSO_NOT", "\"'\"'"])
def test_bad_signature_shows_message_and_keeps_rois(sample_viewer, qtbot, notifications, text):
    viewer, w = sample_viewer
    rois = viewer.layers["ROIs"]
    before = _roi_snapshot(rois)
    w.form.signature_edit.value = text
    qtbot.waitUntil(lambda: "problem" in w.form.status.value, timeout=15_000)
    assert "Fix:" in w.form.status.value
    qtbot.waitUntil(lambda: any("ROI scores:" in str(getattr(n, "message", n)) for n in notifications),
                    timeout=5_000)
    after = _roi_snapshot(rois)
    assert after[1:] == before[1:] and all(np.array_equal(a, b) for a, b in zip(after[0], before[0]))
    # fixing the signature brings the scores back
    w.form.signature_edit.value = "CD68, CD163"
    qtbot.waitUntil(lambda: scores_ready(w) and w.last_table["score"].notna().all(), timeout=30_000)


def test_importing_a_bad_geojson_reports_and_keeps_rois(sample_viewer, tmp_path, notifications, qtbot):
    viewer, w = sample_viewer
    rois = viewer.layers["ROIs"]
    before = _roi_snapshot(rois)
    for i, case in enumerate(["geojson: coordinates are strings", "geojson: empty file",
                              "geojson: number overflowing to inf (1e999)"]):
        folder = tmp_path / f"c{i}"
        folder.mkdir()
        path = folder / REJECTED[case](folder).mentions[0]
        w.state.run_file_action(w.rois_tab.import_geojson, str(path))  # what the "Import QuPath GeoJSON…" button runs
        assert "problem" in w.form.status.value and path.name in w.form.status.value
    qtbot.waitUntil(lambda: sum("ROI scores:" in str(getattr(n, "message", n)) for n in notifications) >= 3,
                    timeout=5_000)
    after = _roi_snapshot(rois)
    assert after[1:] == before[1:] and all(np.array_equal(a, b) for a, b in zip(after[0], before[0]))
