"""Messages are written for people: what was done, to what, where; never an object's repr."""

from __future__ import annotations

import pytest
from napari.utils.notifications import notification_manager
from qtpy.QtWidgets import QFileDialog

pytestmark = pytest.mark.gui


def test_file_actions_say_what_they_did(sample_viewer, qtbot, tmp_path, monkeypatch):
    viewer, w = sample_viewer
    answers = {}
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (answers["save"], "")))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (answers["open"], "")))
    answers["save"] = str(tmp_path / "scores.csv")
    w.export_tab.save_button.clicked.emit()
    assert w.form.status.value == f"saved the scores of 2 ROI(s) to {tmp_path / 'scores.csv'}"
    answers["save"] = str(tmp_path / "study.roiscore.json")
    w.export_tab.save_session_button.clicked.emit()
    status = w.form.status.value
    assert status.startswith("saved the session (2 ROI(s)") and "Session(" not in status
    answers["save"] = str(tmp_path / "rois.geojson")
    w.rois_tab.export_rois_button.clicked.emit()
    assert w.form.status.value == f"exported 2 ROI(s) as QuPath GeoJSON to {tmp_path / 'rois.geojson'}"
    answers["open"] = str(tmp_path / "rois.geojson")
    w.rois_tab.import_button.clicked.emit()
    assert w.form.status.value == "imported 2 ROI(s) from rois.geojson"
    answers["open"] = str(tmp_path / "study.roiscore.json")
    w.export_tab.open_session_button.clicked.emit()  # read in a worker: the message comes when it is shown
    qtbot.waitUntil(lambda: w.form.status.value.startswith("opened the session"), timeout=60_000)
    said = [str(n.message) for n in notification_manager.records]
    assert any(m.startswith("ROI scores: opened the session study.roiscore.json: 2 ROI(s), signature ")
               for m in said), said[-3:]
    assert not any("Session(" in m or "DataFile(" in m for m in said)
    for ly in viewer.layers:
        assert "DataFile(" not in ly.name
