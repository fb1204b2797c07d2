"""The Cohort tab in a real viewer: a written synthetic cohort validated in a worker, numbers as the core's."""

from __future__ import annotations

import pytest
from napari.utils.notifications import notification_manager

from napari_roiscore._qt.cohort_tab import summary_rows
from napari_roiscore.analysis.cohort_run import run_cohort
from napari_roiscore.analysis.synthetic_cohort import synthetic_cohort, write_cohort
from napari_roiscore.scoring.signature import Signature


@pytest.fixture(scope="module")
def cohort_files(tmp_path_factory):
    cohort = synthetic_cohort(12, n_genes=60, seed=11, spots_per_roi=9)
    return cohort, write_cohort(cohort, tmp_path_factory.mktemp("cohort_tab"))


@pytest.fixture
def tab(make_napari_viewer, qtbot, cohort_files):
    cohort, _ = cohort_files
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    widget.form.signature_edit.value = ", ".join(cohort.planted)
    widget.form.method_combo.value = "scanpy"
    tab = widget.cohort_tab
    assert widget.tabs.tabText(widget.tabs.indexOf(tab)) == "Cohort"
    return tab


def _validate(qtbot, tab) -> None:
    tab.run_button.native.click()
    assert tab.running and tab.progress.isVisibleTo(tab) and not tab.run_button.enabled  # not blocking
    qtbot.waitUntil(lambda: not tab.running, timeout=180_000)
    assert tab.run_button.enabled and not tab.progress.isVisibleTo(tab)


def test_validate_shows_the_cores_numbers(tab, qtbot, cohort_files):
    cohort, manifest = cohort_files
    seen = []
    tab.progressed.connect(lambda *a: seen.append(a))
    tab.manifest_edit.value = manifest
    _validate(qtbot, tab)
    core = run_cohort(manifest, Signature("custom signature", up=cohort.planted), "scanpy")
    assert tab.shown_rows() == summary_rows(core, None)
    rows = {r[1]: r for r in tab.shown_rows()}
    assert set(rows) == {"tumour", "stroma", "difference"} and rows["stroma"][0] == "as given"
    table = core.summary().set_index("marker")
    assert rows["stroma"][2] == f"{table.loc['stroma', 'auc']:.2f}" and rows["stroma"][5].startswith("12 (6 R / 6 NR)")
    assert "research use only" in tab.research_note.value.lower() and "not discovered on this cohort" in tab.message.value
    assert tab.message.value.startswith("cohort.csv: Cohort validation of custom signature (scanpy)")
    assert seen and seen[-1][:2] == (12, 12)
    assert len(tab.plot.figure.axes) == 2 and tab.plot.n_draws >= 1
    # a threshold: sensitivity / specificity follow at once, without running again
    tab.fixed_threshold.value = True
    tab.threshold.value = 0.1
    assert tab.shown_rows() == summary_rows(core, 0.1) and not tab.running
    assert {r[6] for r in tab.shown_rows()} == {"0.1"}


@pytest.mark.slow
def test_discovered_here_adds_the_cross_validated_rows(tab, qtbot, cohort_files):
    cohort, manifest = cohort_files
    tab.manifest_edit.value = manifest
    tab.discovered_check.value = True
    tab.folds_combo.value = 4
    _validate(qtbot, tab)
    labels = [r[0] for r in tab.shown_rows()]
    assert labels == ["naive"] * 3 + ["cross-validated"] * 3
    core = run_cohort(manifest, Signature("custom signature", up=cohort.planted), "scanpy", discovered_here=True,
                      folds=4)
    assert tab.shown_rows() == summary_rows(core, None)
    assert "4-fold by patient" in tab.message.value and "naive: AUC inflated" in tab.message.value


def test_bad_manifests_are_notifications(tab, qtbot, cohort_files, tmp_path):
    _, manifest = cohort_files
    before = len(notification_manager.records)

    def _notified(text: str) -> bool:  # in a notification shown by this test
        return any(text in str(n.message) for n in notification_manager.records[before:])

    tab.run_button.native.click()  # nothing chosen yet
    assert _notified("No cohort manifest is chosen") and not tab.running
    lines = manifest.read_text().splitlines()
    data = str(manifest.parent / "data")
    one_class = tmp_path / "one_class.csv"
    one_class.write_text(lines[0] + "\n" + "\n".join(ln.replace("data/", data + "/") for ln in lines[1:]
                                                      if ln.endswith(",non-responder")))
    tab.manifest_edit.value = one_class
    tab.run_button.native.click()
    assert not tab.running and tab.run is None
    assert _notified("a ROC curve needs responders and non-responders. Fix: Give every slide a response")
    no_columns = tmp_path / "no_columns.csv"
    no_columns.write_text("slide,spots\nA,a.h5ad\n")
    tab.manifest_edit.value = no_columns
    tab.run_button.native.click()
    assert _notified("lacks column(s) slide_id, rois") and "not run" in tab.message.value
    missing = tmp_path / "missing.csv"
    missing.write_text(lines[0] + "\n" + "\n".join(lines[1:]))  # data/ is not next to this manifest
    tab.manifest_edit.value = missing
    tab.run_button.native.click()
    assert _notified("file(s) not found") and _notified("relative paths are relative to the manifest")
    assert not tab.running and tab.table.rowCount() == 0
