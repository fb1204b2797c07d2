"""ROIs of crashed sessions merged into the restore offer (real files, real processes)."""

from __future__ import annotations

import json
import os
import socket
import time
import warnings

import pytest
from autosave_helpers import crashed_session, dead_pid
from shapely.geometry import Polygon

from napari_roiscore.rois.autosave import SUFFIX, AutosaveWarning, load_autosave, save_autosave, sidecar_path
from napari_roiscore.rois.autosave_guard import process_sidecar, slide_digest
from napari_roiscore.rois.autosave_merge import (
    crashed_sidecars,
    merge_recovered_rois,
    recover_crashed_sessions,
    settle_recovered,
    stable_key,
)
from napari_roiscore.rois.geojson import rois_to_geojson
from napari_roiscore.rois.roi import Roi

HOST = socket.gethostname()


@pytest.fixture(autouse=True)
def _next_to_the_data(monkeypatch):
    """Sidecars next to the data unless a test sets the shared autosave folder itself."""
    monkeypatch.delenv("NAPARI_ROISCORE_AUTOSAVE_DIR", raising=False)


def _square(name: str, roi_class: str, x: float, size: float = 10.0) -> Roi:
    return Roi(name, roi_class, Polygon([(x, 0), (x + size, 0), (x + size, size), (x, size)]))


def _slide(folder, name: str = "slide.h5ad"):
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / name
    data.write_bytes(b"counts stand-in: only the name, size and time matter")
    return data


def _write_sidecar(data, host: str, pid: int, rois: list[Roi], **meta) -> os.PathLike:
    """A per-process sidecar as save_autosave writes it, for a process we cannot start (another host)."""
    doc = rois_to_geojson(rois)
    doc["roiscore_autosave"] = {"version": 1, "saved_at": "2026-01-02T03:04:05+00:00",
                                "classes": ["tumour", "stroma"], **meta}
    path = process_sidecar(sidecar_path(data), data, host, pid, SUFFIX)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_a_crashed_sessions_rois_are_merged_into_the_offer_and_its_file_set_aside(tmp_path):
    data = _slide(tmp_path)
    mine = [_square("tumour 1", "tumour", 0), _square("stroma 1", "stroma", 50)]
    save_autosave(mine, data)  # this napari holds the slide's lock
    theirs = [_square("tumour 1", "tumour", 200),  # same name, other outline
              _square("stroma 1", "stroma", 50),  # the very same ROI
              _square("immune 1", "immune", 300)]
    crashed = crashed_session(data, theirs, classes=["tumour", "stroma", "immune"])
    assert any("Another napari" in w for w in crashed["warnings"]), "the second napari was told"
    side = crashed["path"]
    assert side.name == f"slide.h5ad.{slide_digest(data)}.{HOST}-{crashed['pid']}{SUFFIX}"
    content = side.read_bytes()
    assert [c.path for c in crashed_sidecars(data)] == [side]

    rec = recover_crashed_sessions(data, load_autosave(data), on_screen=[])

    names = [r.name for r in rec.offer.rois]
    assert names == ["tumour 1", "stroma 1", "tumour 1 (recovered)", "immune 1"]
    assert rec.renamed == {"tumour 1 (recovered)": "tumour 1"}
    got = {r.name: r for r in rec.offer.rois}
    assert got["tumour 1"].geometry.equals(mine[0].geometry), "the slide's own ROI keeps its name"
    assert got["tumour 1 (recovered)"].geometry.equals(theirs[0].geometry)
    assert "immune" in rec.offer.classes
    assert rec.summary == "2 ROI(s) from 1 crashed session"
    assert not side.exists(), "set aside, not left to be merged twice"
    assert len(rec.merged) == 1 and rec.merged[0].name.startswith(side.name + ".merged-")
    assert rec.merged[0].read_bytes() == content, "never deleted nor changed"
    assert crashed_sidecars(data) == []
    again = recover_crashed_sessions(data, load_autosave(data))
    assert [r.name for r in again.offer.rois] == ["tumour 1", "stroma 1"] and not again.merged


def test_without_an_own_autosave_the_crashed_rois_are_the_offer(tmp_path):
    data = _slide(tmp_path)
    crashed = crashed_session(data, [_square("004", "tumour", 0)])
    on_screen = [_square("004", "stroma", 100)]  # the name is taken on screen by another outline
    rec = recover_crashed_sessions(data, None, on_screen=on_screen)
    assert [r.name for r in rec.offer.rois] == ["004 (recovered)"]
    assert rec.offer.path == sidecar_path(data)
    assert not crashed["path"].exists() and rec.merged[0].is_file()


def test_running_processes_and_this_one_are_left_alone(tmp_path):
    data = _slide(tmp_path)
    running = _write_sidecar(data, HOST, os.getppid(), [_square("a", "tumour", 0)])  # our parent runs
    own = _write_sidecar(data, HOST, os.getpid(), [_square("b", "tumour", 0)])
    assert crashed_sidecars(data) == []
    rec = recover_crashed_sessions(data, None)
    assert rec.offer is None and running.is_file() and own.is_file()


def test_another_machine_counts_as_gone_after_a_quiet_day(tmp_path):
    data = _slide(tmp_path)
    fresh = _write_sidecar(data, "other-host.example.org", 4242, [_square("fresh", "tumour", 0)])
    quiet = _write_sidecar(data, "other-host.example.org", 4343, [_square("quiet", "stroma", 0)])
    day_ago = time.time() - 25 * 3600
    os.utime(quiet, (day_ago, day_ago))
    found = crashed_sidecars(data)
    assert [(c.path, c.host, c.pid) for c in found] == [(quiet, "other-host.example.org", 4343)]
    rec = recover_crashed_sessions(data, None)
    assert [r.name for r in rec.offer.rois] == ["quiet"]
    assert fresh.is_file() and not quiet.exists()


def test_old_sidecar_names_without_the_slide_hash_are_recovered_next_to_the_data(tmp_path):
    data = _slide(tmp_path)
    old = tmp_path / f"slide.h5ad.{HOST}-{dead_pid()}{SUFFIX}"
    doc = rois_to_geojson([_square("old", "tumour", 0)])
    old.write_text(json.dumps(doc), encoding="utf-8")
    assert [c.path for c in crashed_sidecars(data)] == [old]
    assert [r.name for r in recover_crashed_sessions(data, None).offer.rois] == ["old"]


@pytest.mark.parametrize("content", [
    b"{ this is not json",
    json.dumps({"type": "FeatureCollection", "features": [],
                "roiscore_autosave": {"classes": 5}}).encode(),  # ill-typed
    json.dumps({"type": "FeatureCollection", "features": "none"}).encode(),
], ids=["bad-json", "classes-a-number", "features-not-a-list"])
def test_an_unreadable_crashed_sidecar_is_kept_aside_with_a_warning(tmp_path, content):
    data = _slide(tmp_path)
    pid = dead_pid()
    bad = process_sidecar(sidecar_path(data), data, HOST, pid, SUFFIX)
    bad.write_bytes(content)
    good = crashed_session(data, [_square("kept", "tumour", 0)])["path"]
    with pytest.warns(AutosaveWarning, match="could not be merged") as seen:
        rec = recover_crashed_sessions(data, None)
    text = str(seen[0].message)
    assert bad.name in text and "kept as" in text and "text editor" in text
    assert [r.name for r in rec.offer.rois] == ["kept"], "the readable session is merged all the same"
    assert not bad.exists() and len(rec.unreadable) == 1
    assert rec.unreadable[0].name.startswith(bad.name + ".unreadable-")
    assert rec.unreadable[0].read_bytes() == content, "kept unchanged"
    assert not good.exists() and rec.messages == [text]


def test_a_crashed_sessions_deleted_rois_stay_in_the_bin(tmp_path):
    data = _slide(tmp_path)
    path = _write_sidecar(data, HOST, dead_pid(), [_square("a", "tumour", 0)])
    doc = json.loads(path.read_text())
    doc["roiscore_deleted"] = rois_to_geojson([_square("gone", "stroma", 40)])["features"]
    path.write_text(json.dumps(doc))
    rec = recover_crashed_sessions(data, None)
    assert [r.name for r in rec.offer.deleted] == ["gone"]


def test_rois_opened_after_the_offer_settle_it(tmp_path):
    data = _slide(tmp_path)
    own = [_square("004", "tumour", 0)]
    save_autosave(own, data)
    file_rois = [_square("004", "tumour", 500), _square("007", "stroma", 600)]  # a GeoJSON opened later
    crashed_session(data, [_square("007", "stroma", 600), _square("004", "tumour", 700), _square("x", "immune", 900)])
    rec = recover_crashed_sessions(data, load_autosave(data), on_screen=[])  # nothing on screen yet
    assert [r.name for r in rec.offer.rois] == ["004", "007", "004 (recovered)", "x"]
    offered, settled = settle_recovered(list(rec.offer.rois), rec, on_screen=file_rois)
    assert [r.name for r in offered] == ["004", "004 (recovered)", "x"], "the crashed 007 is on screen now"
    assert [r.geometry.bounds[0] for r in offered] == [0, 700, 900]
    assert [r.name for r in settled.recovered] == ["004 (recovered)", "x"]
    assert settled.renamed == {"004 (recovered)": "004"}
    x_taken = [*file_rois, _square("x", "tumour", 5)]
    offered2, _ = settle_recovered(offered, settled, on_screen=x_taken)
    assert [r.name for r in offered2] == ["004", "004 (recovered)", "x (recovered)"]


def test_merge_keys_renames_and_duplicates():
    a = _square("t", "tumour", 0)
    shifted_start = Roi("t", "tumour", Polygon([(10, 10), (0, 10), (0, 0), (10, 0)]))  # same square
    assert stable_key(a) == stable_key(shifted_start)
    as_layer_keeps_it = Roi("t", "tumour", Polygon([(0, 0), (10, 0), (10, 10.000000001), (0, 10)]))
    assert stable_key(as_layer_keeps_it) == stable_key(a), "napari's float32 copy is the same outline"
    assert stable_key(_square("t", "tumour", 0.01)) != stable_key(a)
    others = [_square("t", "tumour", 100), _square("t", "tumour", 200), _square("t", "tumour", 100)]
    added, renamed = merge_recovered_rois([a], [shifted_start, *others])
    assert [r.name for r in added] == ["t (recovered)", "t (recovered 2)"]
    assert [r.geometry.bounds[0] for r in added] == [100, 200], "the repeated ROI is offered once"
    assert renamed == {"t (recovered)": "t", "t (recovered 2)": "t"}


def test_the_lock_is_taken_in_an_autosave_folder_that_does_not_exist_yet(tmp_path, monkeypatch):
    folder = tmp_path / "not yet" / "autosave"
    monkeypatch.setenv("NAPARI_ROISCORE_AUTOSAVE_DIR", str(folder))
    data = _slide(tmp_path / "run")
    side = save_autosave([_square("a", "tumour", 0)], data)
    assert side.parent == folder
    lock = side.with_name(side.name + ".lock")
    owner = json.loads(lock.read_text())
    assert (owner["host"], owner["pid"]) == (HOST, os.getpid()), "this napari holds the slide's lock"


def test_two_slides_with_the_same_file_name_keep_their_own_process_sidecars(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_ROISCORE_AUTOSAVE_DIR", str(tmp_path / "state"))
    one, two = _slide(tmp_path / "run1", "outs"), _slide(tmp_path / "run2", "outs")
    for data in (one, two):  # another napari (our parent process, running) autosaves both
        side = sidecar_path(data)
        side.parent.mkdir(parents=True, exist_ok=True)
        side.with_name(side.name + ".lock").write_text(json.dumps({"host": HOST, "pid": os.getppid()}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutosaveWarning)
        p1 = save_autosave([_square("from run 1", "tumour", 0)], one)
        p2 = save_autosave([_square("from run 2", "tumour", 0)], two)
    assert p1 != p2 and p1.parent == p2.parent == tmp_path / "state"
    assert slide_digest(one) in p1.name and slide_digest(two) in p2.name
    assert json.loads(p1.read_text())["features"][0]["properties"]["name"] == "from run 1"
    assert json.loads(p2.read_text())["features"][0]["properties"]["name"] == "from run 2"
    # a crashed session of run 2 is not offered when run 1 opens
    crashed = _write_sidecar(two, HOST, dead_pid(), [_square("run 2 only", "tumour", 0)])
    assert crashed_sidecars(one) == []
    assert [c.path for c in crashed_sidecars(two)] == [crashed]
