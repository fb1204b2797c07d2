from __future__ import annotations

import pytest
from napari.utils.notifications import notification_manager


@pytest.fixture(autouse=True)
def _isolated_autosave(tmp_path, monkeypatch):
    """GUI tests autosave into a temporary folder, never next to real data."""
    monkeypatch.setenv("NAPARI_ROISCORE_AUTOSAVE_DIR", str(tmp_path / "autosave"))


@pytest.fixture
def sample_viewer(make_napari_viewer, qtbot):
    """A viewer with the shipped sample open and the ROI scores dock showing its two scores."""
    from gui_helpers import scores_ready

    viewer = make_napari_viewer()
    viewer.open_sample("napari-roiscore", "multiplex_visium")
    _, widget = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: scores_ready(widget), timeout=60_000)
    return viewer, widget


@pytest.fixture
def notifications():
    """Notifications napari shows (show_error/show_warning/show_info) during the test."""
    seen = []

    def record(event):
        seen.append(event.value if hasattr(event, "value") else event)

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)
