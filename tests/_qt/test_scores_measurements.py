"""The Scores table shows the evidence behind each score, sorts, summarises classes; the CSV too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from qtpy.QtCore import Qt

from napari_roiscore.analysis.roi_measurements import measure_rois

pytestmark = pytest.mark.gui


def test_measurements_in_table_sorting_summary_and_csv(sample_viewer, qtbot, tmp_path):
    viewer, w = sample_viewer
    tab = w.scores_tab
    w.live.flush()
    w.live.measure_now()  # measurements follow the edit burst
    rois = w.state.rois
    scorer = w.state.scorer
    ref = measure_rois(scorer.spots, rois, [scorer.members(r) for r in rois])
    headers = [tab.table.horizontalHeaderItem(j).text() for j in range(tab.table.columnCount())]
    assert headers[5:] == ["area µm²", "total UMIs", "mean UMIs/spot", "genes detected"]
    for i in range(2):
        assert tab.table.item(i, 5).text() == f"{ref['area_um2'][i]:,.0f}"
        assert tab.table.item(i, 6).text() == f"{ref['total_umis'][i]:,.0f}"
        assert tab.table.item(i, 8).text() == str(ref["genes_detected"][i])
    # sort by score, descending: rows move, and editing still finds the right ROI
    tab.table.sortItems(3, Qt.SortOrder.DescendingOrder)
    shown = [float(tab.table.item(i, 3).text()) for i in range(2)]
    assert shown == sorted(shown, reverse=True)
    low = tab.roi_of_row(1)
    expected_low = w.last_table.loc[w.last_table["score"].idxmin(), "roi"]
    assert low == expected_low
    tab.table.item(1, 0).setText("lowest")
    qtbot.waitUntil(lambda: "lowest" in list(w.last_table["roi"]), timeout=10_000)
    assert w.last_table.set_index("roi").loc["lowest", "score"] == pytest.approx(min(shown), abs=1e-3)
    # the sort survives a refresh
    w.state.refresh()
    assert [float(tab.table.item(i, 3).text()) for i in range(2)] == shown
    # per-class summary
    assert tab.summary.rowCount() == 2
    first = [tab.summary.item(0, j).text() for j in range(4)]
    assert first[0].startswith("all ") and "(1 ROI)" in first[0]
    # CSV: old columns first, measurements after
    out = w.export_tab.save_csv(tmp_path / "t.csv")
    df = pd.read_csv(out)
    assert list(df.columns[:6]) == list(w.last_table.columns)
    for col in ("area_um2", "total_umis", "mean_umis_per_spot", "genes_detected", "method", "signature"):
        assert col in df
    np.testing.assert_allclose(df.set_index("roi").loc[list(w.last_table["roi"]), "total_umis"],
                               ref["total_umis"])


def test_measurements_follow_a_moved_roi_after_the_edit(sample_viewer, qtbot):
    viewer, w = sample_viewer
    w.live.flush()
    w.live.measure_now()
    layer = viewer.layers["ROIs"]
    before = w.state.measurements["total_umis"].iloc[0]
    layer.data = [layer.data[0] + 300, layer.data[1]]
    w.live.flush()
    assert w.state.measurements["total_umis"].isna().iloc[0]  # not during the edit burst
    qtbot.waitUntil(lambda: w.state.measurements["total_umis"].notna().all(), timeout=10_000)
    scorer = w.state.scorer
    ref = measure_rois(scorer.spots, w.state.rois, [scorer.members(r) for r in w.state.rois])
    np.testing.assert_allclose(w.state.measurements["total_umis"], ref["total_umis"])
    assert w.state.measurements["total_umis"].iloc[0] != before
    assert w.scores_tab.table.item(0, 6).text() == f"{ref['total_umis'][0]:,.0f}"
