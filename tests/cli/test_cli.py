"""The ``roiscore`` command: score, batch (real Dask LocalCluster), validate, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_roiscore.cli import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_PARTIAL,
    DaskClient,
    main,
    read_manifest,
    resolve_signature,
    run_batch,
    score_slide,
)
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.roi import Roi
from napari_roiscore.rois.geojson import read_geojson
from napari_roiscore.scoring.scorer import TABLE_COLUMNS, RoiScorer
from napari_roiscore.scoring.signature import EXAMPLE_PANEL, Signature
from napari_roiscore.spots.table import read_h5ad_spots
from napari_roiscore.spots.synthetic import make_slide, write_slide
from real_data import real_data

SRC = Path(__file__).resolve().parents[2] / "src"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m napari_roiscore.cli ARGS`` with this checkout's sources first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "napari_roiscore.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"roi": str, "slide_id": str}, float_precision="round_trip",
                       keep_default_na=False, na_values={"score": [""], "median": [""]})


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> dict:
    """Three tiny generated slides and a manifest with a fourth, broken, slide."""
    folder = tmp_path_factory.mktemp("cohort")
    slides = {}
    for i, sid in enumerate(("A", "B", "C")):
        slide = make_slide(size=1024, n_genes=300, seed=10 + i)
        slides[sid] = write_slide(slide, folder / "data", stem=sid, levels=2)
    broken = folder / "data" / "broken_spots.h5ad"
    broken.write_bytes(b"this is not an HDF5 file")
    rows = ["slide_id,spots,rois,image"]
    for sid, p in slides.items():
        img = f"data/{p['image'].name}" if sid != "C" else ""
        rows.append(f"{sid},data/{p['spots'].name},data/{p['rois'].name},{img}")
    rows.append("BROKEN,data/broken_spots.h5ad,data/A_rois.geojson,")
    manifest = folder / "cohort.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return {"folder": folder, "slides": slides, "manifest": manifest}


def reference_table(paths: dict, signature: Signature, method: str = "mean_z") -> pd.DataFrame:
    scorer = RoiScorer(read_h5ad_spots(paths["spots"]))
    return scorer.table(read_geojson(paths["rois"]), scorer.spot_scores(signature, method))


def assert_same_numbers(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got["roi"].astype(str)) == list(want["roi"].astype(str))
    assert list(got["class"]) == list(want["class"])
    assert list(got["spots"].astype(int)) == list(want["spots"].astype(int))
    for col in ("score", "median"):
        assert np.array_equal(got[col].to_numpy(float), want[col].to_numpy(float), equal_nan=True), col


# -- help, usage and exit codes -----------------------------------------------
def test_help_everywhere_lists_exit_codes():
    for args in ([], ["score"], ["batch"], ["validate"], ["demo"]):
        out = run_cli(*args, "--help")
        assert out.returncode == EXIT_OK, out.stderr
        assert "usage: roiscore" in out.stdout
        assert "exit codes" in out.stdout and "3  batch" in out.stdout


def test_usage_errors_exit_2():
    assert run_cli().returncode == 2  # no subcommand
    assert run_cli("score", "--spots", "x.h5ad").returncode == 2  # no ROIs
    out = run_cli("score", "--spots", "x.h5ad", "--rois", "r.geojson", "--genes", "CD68", "--signature", "s.gmt")
    assert out.returncode == 2 and "not allowed with" in out.stderr
    assert run_cli("validate").returncode == 2  # nothing to validate
    with pytest.raises(SystemExit) as exc:
        main(["batch"])  # manifest and --out missing
    assert exc.value.code == 2


def test_invalid_input_is_one_clear_line_without_traceback(tmp_path):
    out = run_cli("score", "--spots", str(tmp_path / "missing.h5ad"), "--rois", str(tmp_path / "r.geojson"))
    assert out.returncode == EXIT_INVALID
    errors = [line for line in out.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "missing.h5ad" in errors[0] and "Fix:" in errors[0]
    assert "Traceback" not in out.stderr


def test_unknown_output_format_fails_before_work(cohort, capsys):
    a = cohort["slides"]["A"]
    rc = main(["-q", "score", "--spots", str(a["spots"]), "--rois", str(a["rois"]), "--out", "t.xlsx"])
    assert rc == EXIT_INVALID
    assert "t.xlsx" in capsys.readouterr().err


def test_cli_module_imports_no_gui():
    code = ("import sys, napari_roiscore.cli, napari_roiscore.session; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('napari', 'qtpy', 'PyQt6', 'vispy')))")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


# -- score --------------------------------------------------------------------
def test_score_subprocess_gives_the_scorers_numbers(cohort, tmp_path):
    a = cohort["slides"]["A"]
    out_csv = tmp_path / "a.csv"
    out = run_cli("score", "--spots", str(a["spots"]), "--rois", str(a["rois"]), "--image", str(a["image"]),
                  "--genes", "CD68, CD163, STAB1, NOTAGENE", "--out", str(out_csv))
    assert out.returncode == EXIT_OK, out.stderr
    assert "NOTAGENE" in out.stderr  # missing genes are reported, scoring goes on
    got = read_table(out_csv)
    want = reference_table(a, Signature("custom signature", up=("CD68", "CD163", "STAB1", "NOTAGENE")))
    assert list(got.columns[: len(TABLE_COLUMNS)]) == TABLE_COLUMNS
    assert_same_numbers(got, want)
    assert set(got["genes_missing"]) == {"NOTAGENE"}
    assert (got["status"] == "ok").all() and (got["spots"] > 0).all()


def test_score_in_process_json_and_stdout(cohort, tmp_path, capsys):
    a = cohort["slides"]["B"]
    js = tmp_path / "b.json"
    assert main(["score", "--spots", str(a["spots"]), "--rois", str(a["rois"]), "--out", str(js),
                 "--report", str(tmp_path / "b.md")]) == EXIT_OK
    records = json.loads(js.read_text())
    want = reference_table(a, EXAMPLE_PANEL)
    assert [r["score"] for r in records] == list(want["score"])  # exact floats through JSON
    assert all(r["signature"] == "Macrophage genes (example panel)" for r in records)
    report = (tmp_path / "b.md").read_text()
    assert "NOT the published" in report and "sha256" in report
    capsys.readouterr()
    assert main(["-q", "score", "--spots", str(a["spots"]), "--rois", str(a["rois"])]) == EXIT_OK
    captured = capsys.readouterr()
    assert captured.err == ""  # --quiet
    assert captured.out.splitlines()[0].startswith("roi,class,spots,score")


def test_signature_file_selection(tmp_path):
    gmt = tmp_path / "sigs.gmt"
    gmt.write_text("MACRO\tdesc\tCD68\tCD163\nENDO\tdesc\tPECAM1\tVWF\n")
    with pytest.raises(RoiScoreError, match="--signature-name"):
        resolve_signature(gmt)
    assert resolve_signature(gmt, name="ENDO").up == ("PECAM1", "VWF")
    with pytest.raises(RoiScoreError, match="MACRO, ENDO"):
        resolve_signature(gmt, name="nope")
    assert resolve_signature(genes="cd68 cd163 stab1 mrc1 msr1") is EXAMPLE_PANEL


# -- validate -----------------------------------------------------------------
def test_validate_lists_every_problem(cohort, tmp_path):
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [5, 5]]}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [9, 0], [9, 9], [0, 0]]]}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[["x", 0], [9, 0], [9, 9]]]}},
    ]}))
    out = run_cli("validate", "--spots", str(tmp_path / "gone.h5ad"), "--rois", str(bad),
                  "--image", str(bad), "--method", "no_such_method")
    assert out.returncode == EXIT_INVALID
    problems = [line for line in out.stdout.splitlines() if line.startswith("problem:")]
    text = "\n".join(problems)
    assert len(problems) == 5, text
    for needle in ("no_such_method", "gone.h5ad", "feature 0", "feature 2", "not a readable TIFF"):
        assert needle in text


def test_validate_good_and_mismatched_inputs(cohort, tmp_path):
    a, b = cohort["slides"]["A"], cohort["slides"]["B"]
    ok = run_cli("validate", "--spots", str(a["spots"]), "--rois", str(a["rois"]), "--image", str(a["image"]))
    assert ok.returncode == EXIT_OK, ok.stdout + ok.stderr
    import tifffile

    small = tmp_path / "small.ome.tif"
    tifffile.imwrite(small, np.zeros((2, 64, 64), np.uint8), metadata={"axes": "CYX"})
    bad = run_cli("validate", "--spots", str(b["spots"]), "--rois", str(b["rois"]), "--image", str(small),
                  "--genes", "NOTAGENE1,NOTAGENE2")
    assert bad.returncode == EXIT_INVALID
    text = bad.stdout
    assert "outside the image" in text and "ROI '004'" in text and "ROI '007'" in text
    assert "None of the signature genes" in text


def test_validate_manifest_checks_every_slide(cohort):
    out = run_cli("validate", "--manifest", str(cohort["manifest"]))
    assert out.returncode == EXIT_INVALID
    problems = [line for line in out.stdout.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1 and "slide BROKEN" in problems[0]


def test_manifest_problems_are_all_listed(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("slide_id,spots\nA,a.h5ad\n")
    with pytest.raises(RoiScoreError, match="rois"):
        read_manifest(m)
    m.write_text("slide_id,spots,rois\nA,a.h5ad,a.geojson\nA,b.h5ad,\n,c.h5ad,c.geojson\n")
    with pytest.raises(RoiScoreError) as exc:
        read_manifest(m)
    msg = str(exc.value)
    assert "line 3: slide_id 'A' already used on line 2" in msg
    assert "line 3: empty 'rois' path" in msg and "line 4: empty slide_id" in msg
    m.write_text("slide_id,spots,rois,image\nA,sub/a.h5ad,/abs/a.geojson,\n")
    (s,) = read_manifest(m)
    assert s.spots == (tmp_path / "sub" / "a.h5ad").resolve() and s.rois == Path("/abs/a.geojson")
    assert s.image is None


# -- batch on Dask distributed ------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    """A real LocalCluster with 2 worker processes (one thread each)."""
    import warnings

    from distributed import LocalCluster

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        lc = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with lc:
        yield lc


def test_run_batch_survives_a_broken_slide(cohort, cluster):
    from distributed import Client

    slides = read_manifest(cohort["manifest"])
    with Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        res = run_batch(slides, EXAMPLE_PANEL, client)
    assert list(res.failures["slide_id"]) == ["BROKEN"]
    assert "broken_spots.h5ad" in res.failures["error"].iloc[0]
    assert list(dict.fromkeys(res.table["slide_id"])) == ["A", "B", "C"]  # manifest order
    for sid, paths in cohort["slides"].items():
        got = res.table[res.table["slide_id"] == sid].reset_index(drop=True)
        assert_same_numbers(got, reference_table(paths, EXAMPLE_PANEL))


def test_batch_cli_on_existing_scheduler_matches_score(cohort, cluster, tmp_path, capsys):
    out = tmp_path / "cohort.csv"
    rc = main(["batch", str(cohort["manifest"]), "--scheduler", cluster.scheduler_address,
               "--genes", "CD68,CD163,MRC1", "--out", str(out)])
    assert rc == EXIT_PARTIAL
    err = capsys.readouterr().err
    assert "BROKEN: FAILED" in err and "[4/4]" in err
    cohort_table = read_table(out)
    failures = read_table(out.with_name("cohort.failures.csv"))
    assert list(failures["slide_id"]) == ["BROKEN"]
    for sid, paths in cohort["slides"].items():
        single = tmp_path / f"{sid}.csv"
        assert main(["-q", "score", "--spots", str(paths["spots"]), "--rois", str(paths["rois"]),
                     "--genes", "CD68,CD163,MRC1", "--out", str(single)]) == EXIT_OK
        one = read_table(single)
        got = cohort_table[cohort_table["slide_id"] == sid].drop(columns="slide_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, one, check_exact=True)


def test_batch_subprocess_starts_its_own_local_cluster(cohort, tmp_path):
    out = tmp_path / "cohort.json"
    res = run_cli("batch", str(cohort["manifest"]), "--workers", "2", "--out", str(out),
                  "--failures", str(tmp_path / "failed.csv"))
    assert res.returncode == EXIT_PARTIAL, res.stderr
    assert "local cluster of 2 worker process(es)" in res.stderr
    assert "Traceback" not in res.stderr
    records = json.loads(out.read_text())
    assert {r["slide_id"] for r in records} == {"A", "B", "C"}
    assert "BROKEN" in (tmp_path / "failed.csv").read_text()


def test_batch_all_good_exits_0(cohort, cluster, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("\n".join(cohort["manifest"].read_text().splitlines()[:3]).replace(
        "data/", str(cohort["folder"] / "data") + "/") + "\n")
    out = tmp_path / "t.csv"
    stale = tmp_path / "t.failures.csv"
    stale.write_text("slide_id,error\nX,old\n")
    assert main(["-q", "batch", str(good), "--scheduler", cluster.scheduler_address, "--out", str(out)]) == EXIT_OK
    assert not stale.exists()
    assert set(read_table(out)["slide_id"]) == {"A", "B"}


def test_unreachable_scheduler_is_invalid_input():
    with pytest.raises(RoiScoreError, match="Cannot reach the Dask scheduler"):
        with DaskClient("tcp://127.0.0.1:9", timeout="2s"):
            pass


# -- demo ---------------------------------------------------------------------
@pytest.mark.gui
@pytest.mark.slow
def test_demo_widget_and_cli_give_identical_numbers(tmp_path):
    """``roiscore demo`` (the widget on the sample) and ``roiscore score`` agree exactly."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        pytest.skip("the demo opens napari: run under xvfb-run")
    from napari_roiscore.spots.sample import SAMPLE_DIR

    demo = run_cli("demo", "--no-window", "--out", str(tmp_path / "demo"))
    assert demo.returncode == EXIT_OK, demo.stderr[-2000:]
    widget = read_table(tmp_path / "demo" / "roi_scores.csv")
    cli_csv = tmp_path / "cli.csv"
    assert main(["-q", "score", "--spots", str(SAMPLE_DIR / "sample_spots.h5ad"),
                 "--rois", str(SAMPLE_DIR / "sample_rois.geojson"), "--out", str(cli_csv)]) == EXIT_OK
    assert_same_numbers(widget, read_table(cli_csv))


# -- marker restriction ------------------------------------------------------
def test_marker_restriction_matches_the_marker_module(cohort, tmp_path):
    from napari_roiscore.images.multiplex import read_multiplex_tiff
    from napari_roiscore.images.markers import marker_mask
    from napari_roiscore.images.spot_footprints import footprint_fractions, restrict_spots

    a = cohort["slides"]["A"]
    out = tmp_path / "m.csv"
    res = run_cli("score", "--spots", str(a["spots"]), "--rois", str(a["rois"]), "--image", str(a["image"]),
                  "--marker", "CD68", "--marker-threshold", "60", "--min-positive", "20", "--out", str(out))
    assert res.returncode == EXIT_OK, res.stderr
    got = read_table(out)
    spots = read_h5ad_spots(a["spots"])
    mask = marker_mask(read_multiplex_tiff(a["image"]), "CD68", threshold=60, spot_diameter_px=spots.diameter_px)
    keep = restrict_spots(footprint_fractions(mask, spots.xy, spots.diameter_px, spots.shape), 0.2)
    assert 0 < keep.sum() < len(keep)  # the filter really filters
    scorer = RoiScorer(spots)
    want = scorer.table(read_geojson(a["rois"]), scorer.spot_scores(EXAMPLE_PANEL), spot_mask=keep)
    assert_same_numbers(got, want)
    unrestricted = reference_table(a, EXAMPLE_PANEL)
    assert (got["spots"].to_numpy() <= unrestricted["spots"].to_numpy()).all()
    assert got["spots"].sum() < unrestricted["spots"].sum()
    assert got["marker_restriction"].str.startswith("CD68+ (> 60, user").all()


def test_marker_needs_an_image_per_slide(cohort, cluster, tmp_path, capsys):
    out = tmp_path / "m.csv"
    rc = main(["batch", str(cohort["manifest"]), "--scheduler", cluster.scheduler_address,
               "--marker", "CD68", "--out", str(out)])
    assert rc == EXIT_PARTIAL
    failures = read_table(out.with_name("m.failures.csv"))
    assert list(failures["slide_id"]) == ["C", "BROKEN"]  # C has no image
    assert "needs the image" in failures["error"].iloc[0]
    table = read_table(out)
    assert set(table["slide_id"]) == {"A", "B"}
    assert table["marker_restriction"].str.contains("Otsu").all()
    capsys.readouterr()
    bad = run_cli("validate", "--spots", str(cohort["slides"]["A"]["spots"]), "--image",
                  str(cohort["slides"]["A"]["image"]), "--marker", "NOSUCHSTAIN")
    assert bad.returncode == EXIT_INVALID and "NOSUCHSTAIN" in bad.stdout


# -- real data ----------------------------------------------------------------
def test_score_a_real_space_ranger_folder(tmp_path):
    outs = real_data("visium_cytassist_mouse")
    from shapely.geometry import box

    from napari_roiscore.readers import read_spaceranger
    from napari_roiscore.rois.geojson import write_geojson

    spots = read_spaceranger(outs, load_images=False)
    x0, y0 = spots.xy.min(axis=0)
    x1, y1 = spots.xy.max(axis=0)
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    rois = [Roi("left", "tumour", box(x0, y0, mx, y1)), Roi("right", "stroma", box(mx, y0, x1, my))]
    write_geojson(rois, tmp_path / "r.geojson")
    genes = "Cd68,Adgre1,Csf1r,Lyz2,C1qa"
    out = tmp_path / "t.csv"
    res = run_cli("score", "--spots", str(outs), "--rois", str(tmp_path / "r.geojson"), "--genes", genes,
                  "--out", str(out))
    assert res.returncode == EXIT_OK, res.stderr
    got = read_table(out)
    scorer = RoiScorer(spots)
    want = scorer.table(read_geojson(tmp_path / "r.geojson"),
                        scorer.spot_scores(Signature("custom signature", up=tuple(genes.split(",")))))
    assert_same_numbers(got, want)
    assert (got["spots"] > 10).all()


# -- ROIs sharing a name, misplaced spots, zero-area features ------------------------
def _square(x0: float, y0: float, side: float) -> list:
    return [[[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side], [x0, y0]]]


def _feature(name: str, coords: list, gtype: str = "Polygon") -> dict:
    return {"type": "Feature", "properties": {"name": name}, "geometry": {"type": gtype, "coordinates": coords}}


def _write_rois(path: Path, feats: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def test_score_merges_features_sharing_a_name_as_the_widget_does(cohort, tmp_path, capsys):
    from napari_roiscore.rois.shapes import rois_from_shapes, shapes_from_rois

    a = cohort["slides"]["A"]
    rois = _write_rois(tmp_path / "dup.geojson", [_feature("dup", _square(100, 100, 200)),
                                                  _feature("dup", _square(500, 500, 200)),
                                                  _feature("one", _square(300, 600, 150))])
    res = score_slide(a["spots"], rois, EXAMPLE_PANEL)
    assert list(res.table["roi"]) == ["dup", "one"]
    # the widget: the file drawn as shapes, read back from the layer
    sh = shapes_from_rois(read_geojson(rois, merge=False))
    widget = rois_from_shapes(sh["data"], sh["shape_type"], sh["name"], sh["class"], sh["holes"])
    scorer = RoiScorer(read_h5ad_spots(a["spots"]))
    want = scorer.table(widget, scorer.spot_scores(EXAMPLE_PANEL))
    assert_same_numbers(res.table, want)
    assert main(["validate", "--spots", str(a["spots"]), "--rois", str(rois)]) == EXIT_OK
    assert "scored as one ROI (their union): ['dup']" in capsys.readouterr().out


def test_validate_lists_a_zero_area_roi_next_to_a_broken_feature(tmp_path, capsys):
    rois = _write_rois(tmp_path / "bad.geojson", [
        _feature("flat", [[[0, 0], [10, 0], [20, 0], [0, 0]]]),
        _feature("line", [[0, 0], [5, 5]], "LineString"),
        _feature("fine", _square(0, 0, 10))])
    assert main(["validate", "--rois", str(rois)]) == EXIT_INVALID
    problems = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("problem:")]
    assert len(problems) == 2, problems
    assert "feature 0: ROI 'flat' has" in problems[0] and "area" in problems[0]
    assert "feature 1" in problems[1]


def test_score_and_validate_warn_when_no_roi_holds_a_spot(cohort, tmp_path, capsys):
    a = cohort["slides"]["A"]
    far = _write_rois(tmp_path / "far.geojson", [_feature("r1", _square(50_000, 50_000, 100)),
                                                 _feature("r2", _square(60_000, 60_000, 100))])
    assert main(["score", "--spots", str(a["spots"]), "--rois", str(far)]) == EXIT_OK
    err = capsys.readouterr().err
    assert "warning: no ROI holds any spot centre" in err
    assert "the ROIs x 50000..60100, y 50000..60100 px" in err and "spots span x " in err
    assert main(["validate", "--spots", str(a["spots"]), "--rois", str(far)]) == EXIT_OK
    assert "no ROI holds any spot centre" in capsys.readouterr().out
    assert main(["score", "--spots", str(a["spots"]), "--rois", str(a["rois"])]) == EXIT_OK
    assert "no ROI holds" not in capsys.readouterr().err


def test_score_warns_when_spots_sit_on_a_made_up_grid(cohort, tmp_path, capsys):
    import anndata as ad

    a = cohort["slides"]["A"]
    adata = ad.read_h5ad(a["spots"])
    adata.obs["has_coordinates"] = False  # as the GeoMx NGS reader marks its grid layout
    adata.write_h5ad(tmp_path / "grid.h5ad")
    assert main(["score", "--spots", str(tmp_path / "grid.h5ad"), "--rois", str(a["rois"])]) == EXIT_OK
    assert "warning: spots" in (err := capsys.readouterr().err) and "made-up grid" in err
    assert main(["score", "--spots", str(a["spots"]), "--rois", str(a["rois"])]) == EXIT_OK
    assert "made-up grid" not in capsys.readouterr().err


def test_param_names_and_booleans_are_checked(cohort, capsys):
    a = cohort["slides"]["A"]
    base = ["score", "--spots", str(a["spots"]), "--rois", str(a["rois"])]
    with pytest.raises(SystemExit) as ex:
        main([*base, "--method", "ucell", "--param", "max_rnk=100"])
    assert ex.value.code == 2
    err = capsys.readouterr().err
    assert "no parameter 'max_rnk'" in err and "max_rank (default 1500)" in err
    with pytest.raises(SystemExit):
        main([*base, "--method", "singscore", "--param", "center=maybe"])
    assert "not true or false" in capsys.readouterr().err
    tables = {}
    for text in ("False", "false", "no", "0"):
        assert main([*base, "--method", "singscore", "--param", f"center={text}"]) == EXIT_OK
        tables[text] = capsys.readouterr().out
    assert len(set(tables.values())) == 1
    assert main([*base, "--method", "singscore"]) == EXIT_OK
    assert capsys.readouterr().out != tables["False"]  # centred by default: "False" really is false


@pytest.mark.parametrize("option", [["--min-positive", "20"], ["--marker-threshold", "80"]])
def test_marker_options_without_marker_are_refused(cohort, capsys, option):
    """--min-positive without --marker was ignored: the table looked restricted but was not."""
    a = cohort["slides"]["A"]
    code = main(["score", "--spots", str(a["spots"]), "--rois", str(a["rois"]), *option])
    assert code != EXIT_OK
    err = capsys.readouterr().err
    assert f"{option[0]} without --marker" in err and "--marker CD68" in err


def test_manifest_rows_with_a_trailing_comma_keep_their_columns(cohort, tmp_path):
    """A trailing comma made pandas take slide_id as the index: 'empty rois path'."""
    from napari_roiscore.cli import read_manifest

    folder = cohort["folder"]
    text = "slide_id,spots,rois\n" + "".join(
        f"{sid},data/{p['spots'].name},data/{p['rois'].name},\n" for sid, p in cohort["slides"].items())
    manifest = folder / "trailing.csv"
    manifest.write_text(text)
    slides = read_manifest(manifest)
    assert [s.slide_id for s in slides] == list(cohort["slides"])
    assert [Path(s.rois).name for s in slides] == [p["rois"].name for p in cohort["slides"].values()]


def test_old_sessions_with_tumor_class_count_as_identical_numbers():
    from napari_roiscore.session import same_numbers

    a = pd.DataFrame({"roi": ["004"], "class": ["tumour"], "spots": [25], "score": [-0.5], "median": [-0.3],
                      "status": ["ok"]})
    b = a.assign(**{"class": ["tumor"]})
    assert same_numbers(a, b)
    assert not same_numbers(a, a.assign(**{"class": ["stroma"]}))


def test_validate_checks_a_session_s_method_parameters(cohort, tmp_path, capsys):
    import json

    a = cohort["slides"]["A"]
    session = tmp_path / "s.roiscore.json"
    assert main(["-q", "score", "--spots", str(a["spots"]), "--rois", str(a["rois"]), "--method", "ucell",
                 "--save-session", str(session)]) == EXIT_OK
    doc = json.loads(session.read_text())
    doc["params"] = {"foo": 1}
    session.write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["validate", "--session", str(session)]) != EXIT_OK
    assert "no parameter 'foo'" in capsys.readouterr().out


def test_signature_name_without_a_file_is_refused(cohort, capsys):
    a = cohort["slides"]["A"]
    code = main(["score", "--spots", str(a["spots"]), "--rois", str(a["rois"]), "--signature-name", "HALLMARK_X"])
    assert code != EXIT_OK
    assert "no signature file" in capsys.readouterr().err
