"""The command line never writes over an input, writes its outputs all or nothing,
and a slow slide does not stall a batch (issue 12)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

import napari_roiscore.cli.batch as cli
from napari_roiscore.cli import EXIT_INVALID, EXIT_OK, Slide, main, run_batch
from napari_roiscore.scoring.signature import Signature


def _score(slide: dict, *extra: str) -> int:
    return main(["-q", "score", "--spots", str(slide["spots"]), "--rois", str(slide["rois"]),
                 "--image", str(slide["image"]), "--signature", str(slide["signature"]), *extra])


@pytest.mark.parametrize("flag,target", [
    ("--save-session", "spots"),  # the severe example: the counts .h5ad replaced by JSON
    ("--report", "rois"),
    ("--out", "signature"),
    ("--report", "spots"),
    ("--report", "image"),
])
def test_an_output_naming_an_input_is_refused_and_the_input_kept(slide, flag, target, capsys):
    before = slide[target].read_bytes()
    assert _score(slide, flag, str(slide[target])) == EXIT_INVALID
    err = capsys.readouterr().err
    assert slide[target].name in err and "destroy" in err
    assert slide[target].read_bytes() == before


def test_session_output_naming_the_session_input_is_refused(slide, tmp_path, capsys):
    session = tmp_path / "s.roiscore.json"
    assert _score(slide, "--save-session", str(session), "--out", str(tmp_path / "t.csv")) == EXIT_OK
    before = session.read_bytes()
    assert main(["-q", "score", "--session", str(session), "--out", str(session)]) == EXIT_INVALID
    assert "destroy" in capsys.readouterr().err and session.read_bytes() == before
    assert main(["-q", "score", "--session", str(session), "--report", str(slide["rois"])]) == EXIT_INVALID
    assert "destroy" in capsys.readouterr().err


def test_batch_output_naming_the_manifest_is_refused(slide, tmp_path, capsys):
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(f"slide_id,spots,rois\nS,{slide['spots']},{slide['rois']}\n")
    before = manifest.read_bytes()
    assert main(["-q", "batch", str(manifest), "--out", str(manifest)]) == EXIT_INVALID
    assert "cohort.csv" in capsys.readouterr().err and manifest.read_bytes() == before
    assert main(["-q", "batch", str(manifest), "--out", str(tmp_path / "t.csv"),
                 "--failures", str(slide["rois"])]) == EXIT_INVALID


def test_outputs_are_written_all_or_nothing(slide, tmp_path, capsys):
    out = tmp_path / "table.csv"
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    # the session cannot be written (its folder is a file): neither is the table nor the report
    code = _score(slide, "--out", str(out), "--report", str(tmp_path / "r.md"),
                  "--save-session", str(blocker / "s.json"))
    assert code == EXIT_INVALID and "none was written" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_folder"]
    assert _score(slide, "--out", str(out), "--report", str(tmp_path / "r.md")) == EXIT_OK
    assert out.is_file() and (tmp_path / "r.md").is_file()


def test_an_output_that_is_a_folder_or_pipe_is_refused_before_scoring(slide, tmp_path, capsys):
    import os

    os.mkfifo(tmp_path / "pipe.csv")
    assert _score(slide, "--out", str(tmp_path / "pipe.csv")) == EXIT_INVALID  # would block forever
    assert "pipe" in capsys.readouterr().err
    assert _score(slide, "--report", str(tmp_path)) == EXIT_INVALID
    assert "folder" in capsys.readouterr().err


_REAL_TASK = cli._score_slide_task
_RELEASE: dict[str, Path] = {}


def _stuck_task(s, *args, **kwargs):
    """The task of a slide whose reader hangs (until the test releases it)."""
    if s.slide_id == "slow":
        end = time.monotonic() + 120
        while not _RELEASE["file"].exists() and time.monotonic() < end:
            time.sleep(0.1)
    return _REAL_TASK(s, *args, **kwargs)


def test_a_slow_slide_times_out_and_the_others_are_written(slide, monkeypatch, tmp_path):
    from distributed import Client, LocalCluster

    _RELEASE["file"] = tmp_path / "release"
    monkeypatch.setattr(cli, "_score_slide_task", _stuck_task)
    slides = [Slide("fast", slide["spots"], slide["rois"]), Slide("slow", slide["spots"], slide["rois"]),
              Slide("fast2", slide["spots"], slide["rois"])]
    sig = Signature("MACRO", ("CD68", "CD163", "STAB1"))
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=None) as lc, Client(lc) as client:
        t0 = time.monotonic()
        try:
            result = run_batch(slides, sig, client, slide_timeout=3.0)
        finally:
            _RELEASE["file"].write_text("go")
        waited = time.monotonic() - t0
    assert set(result.table["slide_id"]) == {"fast", "fast2"}
    assert list(result.failures["slide_id"]) == ["slow"]
    assert "timed out" in result.failures["error"].iloc[0]
    assert waited < 60  # not the 120 s the stuck slide would have taken
    assert isinstance(result.table, pd.DataFrame)
