"""Session files: save, load, verify checksums, reproduce every number."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from napari_roiscore.cli import EXIT_INVALID, EXIT_OK, main
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.roi import Roi
from napari_roiscore.rois.geojson import read_geojson
from napari_roiscore.scoring.scorer import TABLE_COLUMNS, RoiScorer
from napari_roiscore.session import (
    load_session,
    make_session,
    same_numbers,
    save_session,
    score_session,
    sha256_path,
)
from napari_roiscore.scoring.signature import EXAMPLE_PANEL, Signature
from napari_roiscore.spots.table import read_h5ad_spots
from napari_roiscore.spots.synthetic import make_slide, write_slide


@pytest.fixture(scope="module")
def slide_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("slide")
    return write_slide(make_slide(size=1024, n_genes=300, seed=3), folder, stem="s", levels=2)


@pytest.fixture()
def data(slide_files, tmp_path) -> dict[str, Path]:
    """A private copy of the slide (tests modify files)."""
    out = {}
    for role, p in slide_files.items():
        out[role] = tmp_path / "data" / p.name
        out[role].parent.mkdir(exist_ok=True)
        shutil.copy(p, out[role])
    return out


SIG = Signature("two up one down", up=("CD68", "STAB1"), down=("EPCAM",), weights={"CD68": 2.0})


def table_for(spots: Path, rois: list[Roi], signature: Signature) -> pd.DataFrame:
    scorer = RoiScorer(read_h5ad_spots(spots))
    return scorer.table(rois, scorer.spot_scores(signature, "mean_z"))


def edited_rois(rois_file: Path) -> list[Roi]:
    """The file's ROIs plus one drawn by hand (not in any file), with a hole."""
    rois = read_geojson(rois_file)
    from shapely.geometry import Polygon

    ring = Polygon([(100, 100), (700, 120), (680, 650), (90, 640)], holes=[[(300, 300), (400, 300), (400, 400)]])
    return [*rois, Roi("hand-drawn", "stroma", ring)]


def test_round_trip_reproduces_every_number(data, tmp_path):
    rois = edited_rois(data["rois"])
    table = table_for(data["spots"], rois, SIG)
    path = save_session(tmp_path / "s.roiscore.json", spots=data["spots"], rois=rois, signature=SIG,
                        method="mean_z", image=data["image"], rois_file=data["rois"],
                        thresholds={"CD68": 40}, results=table, extra={"zoom": 1.5})
    s = load_session(path)
    assert s.signature == SIG
    assert s.method == "mean_z" and s.thresholds == {"CD68": 40} and s.extra == {"zoom": 1.5}
    assert [r.name for r in s.rois] == ["004", "007", "hand-drawn"]
    assert [r.roi_class for r in s.rois] == ["tumour", "stroma", "stroma"]
    assert all(a.geometry.equals_exact(b.geometry, 0) for a, b in zip(s.rois, rois))
    assert s.spots.sha256 == sha256_path(data["spots"]) and s.image.path == data["image"].resolve()
    assert s.rois_file.sha256 == sha256_path(data["rois"])
    again = score_session(s)
    assert list(again.columns) == TABLE_COLUMNS
    assert np.array_equal(again["score"].to_numpy(), table["score"].to_numpy(), equal_nan=True)
    assert np.array_equal(again["median"].to_numpy(), table["median"].to_numpy(), equal_nan=True)
    assert same_numbers(again, s.results)
    assert s.version_differences() == []
    versions = json.loads(path.read_text())["versions"]
    assert {"python", "napari-roiscore", "numpy", "anndata"} <= set(versions)


def test_same_numbers_can_fail(data):
    rois = read_geojson(data["rois"])
    a = table_for(data["spots"], rois, SIG)
    b = a.copy()
    b.loc[0, "score"] = np.nextafter(b.loc[0, "score"], np.inf)  # one ulp
    assert same_numbers(a, a.copy()) and not same_numbers(a, b)


def test_session_from_spot_table_object(data, tmp_path):
    spots = read_h5ad_spots(data["spots"])
    rois = read_geojson(data["rois"])
    path = save_session(tmp_path / "s.json", spots=spots, rois=data["rois"], signature=EXAMPLE_PANEL)
    s = load_session(path)
    assert s.signature.is_example and s.rois_file is not None
    assert same_numbers(score_session(s), table_for(data["spots"], rois, EXAMPLE_PANEL))
    spots.provenance.clear()
    with pytest.raises(RoiScoreError, match="not read from a file"):
        make_session(spots=spots, rois=rois, signature=EXAMPLE_PANEL)


def test_changed_data_file_is_named(data, tmp_path):
    path = save_session(tmp_path / "s.json", spots=data["spots"], rois=data["rois"], signature=SIG,
                        image=data["image"])
    a = ad.read_h5ad(data["spots"])
    x = a.X.toarray()
    x[0, 0] += 1  # one count more in one spot
    a.X = type(a.X)(x)
    a.write_h5ad(data["spots"])
    with pytest.raises(RoiScoreError) as exc:
        load_session(path)
    msg = str(exc.value)
    assert str(data["spots"].resolve()) in msg and "changed" in msg
    assert "image" not in msg.split("Fix:")[0]  # the unchanged image is not blamed
    data["image"].unlink()
    with pytest.raises(RoiScoreError) as exc:
        load_session(path)
    assert "missing" in str(exc.value) and "changed" in str(exc.value)  # both problems listed
    assert load_session(path, verify=False).method == "mean_z"


def test_cli_session_round_trip_and_checksum_error(data, tmp_path, capsys):
    first = tmp_path / "first.csv"
    sess = tmp_path / "study.json"
    assert main(["score", "--spots", str(data["spots"]), "--rois", str(data["rois"]),
                 "--image", str(data["image"]), "--genes", "CD68,CD163,MRC1", "--out", str(first),
                 "--save-session", str(sess)]) == EXIT_OK
    again = tmp_path / "again.csv"
    capsys.readouterr()
    assert main(["score", "--session", str(sess), "--out", str(again)]) == EXIT_OK
    assert "identical to those stored" in capsys.readouterr().err
    assert again.read_text() == first.read_text()  # byte for byte
    with data["rois"].open("a") as fh:
        fh.write("\n")  # even whitespace counts: the ROI file changed
    assert main(["score", "--session", str(sess)]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "rois file" in err and str(data["rois"].resolve()) in err and "Traceback" not in err
    assert main(["validate", "--session", str(sess)]) == EXIT_INVALID


def test_session_moved_with_its_data(data, tmp_path):
    path = save_session(tmp_path / "s.json", spots=data["spots"], rois=data["rois"], signature=SIG)
    before = score_session(load_session(path))
    moved = tmp_path.parent / (tmp_path.name + "_moved")
    shutil.move(str(tmp_path), str(moved))
    try:
        s = load_session(moved / "s.json")
        assert s.spots.path == (moved / "data" / data["spots"].name).resolve()
        assert same_numbers(score_session(s), before)
    finally:
        shutil.rmtree(moved)


def test_malformed_sessions(data, tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(RoiScoreError, match="not valid JSON"):
        load_session(p)
    p.write_text(json.dumps({"hello": 1}))
    with pytest.raises(RoiScoreError, match="not a napari-roiscore session"):
        load_session(p)
    good = save_session(tmp_path / "g.json", spots=data["spots"], rois=data["rois"], signature=SIG)
    d = json.loads(good.read_text())
    d["format_version"] = 99
    p.write_text(json.dumps(d))
    with pytest.raises(RoiScoreError, match="newer"):
        load_session(p)
    d["format_version"] = 1
    d["versions"]["numpy"] = "0.0.1"
    del d["method"]
    p.write_text(json.dumps(d))
    with pytest.raises(RoiScoreError, match="'method' is missing"):
        load_session(p)
    d["method"] = "mean_z"
    p.write_text(json.dumps(d))
    assert any(x.startswith("numpy: session 0.0.1") for x in load_session(p).version_differences())
    with pytest.raises(RoiScoreError, match="params"):
        make_session(spots=data["spots"], rois=data["rois"], signature=SIG, params={"bad": object()})
    with pytest.raises(RoiScoreError, match="params"):
        make_session(spots=data["spots"], rois=data["rois"], signature=SIG, params={"x": float("nan")})


def test_folder_checksum_follows_its_files(tmp_path):
    (tmp_path / "outs" / "spatial").mkdir(parents=True)
    (tmp_path / "outs" / "a.h5").write_bytes(b"abc")
    (tmp_path / "outs" / "spatial" / "pos.csv").write_text("1,2\n")
    h1 = sha256_path(tmp_path / "outs")
    (tmp_path / "outs" / "spatial" / "pos.csv").write_text("1,3\n")
    h2 = sha256_path(tmp_path / "outs")
    (tmp_path / "outs" / "spatial" / "pos.csv").rename(tmp_path / "outs" / "spatial" / "p.csv")
    h3 = sha256_path(tmp_path / "outs")
    assert len({h1, h2, h3}) == 3


def test_folder_checksum_follows_symlinked_subfolders_and_survives_loops(tmp_path):
    import hashlib

    outs = tmp_path / "outs"
    (outs / "a-b").mkdir(parents=True)
    (outs / "a").mkdir()
    (outs / "a" / "b.txt").write_text("1")
    (outs / "a-b" / "c.txt").write_text("2")
    (outs / "top.h5").write_bytes(b"abc")
    # a plain folder hashes exactly as before (files sorted as paths, relative names + contents)
    h = hashlib.sha256()
    for f in sorted(p for p in outs.rglob("*") if p.is_file()):
        h.update(f.relative_to(outs).as_posix().encode("utf-8") + b"\0" + sha256_path(f).encode("ascii"))
    assert sha256_path(outs) == h.hexdigest()
    real = tmp_path / "elsewhere" / "spatial"
    real.mkdir(parents=True)
    (real / "pos.csv").write_text("1,2\n")
    (outs / "spatial").symlink_to(real, target_is_directory=True)
    (outs / "a" / "loop").symlink_to(outs, target_is_directory=True)  # must not recurse for ever
    h1 = sha256_path(outs)
    (real / "pos.csv").write_text("1,3\n")
    h2 = sha256_path(outs)
    assert h1 != h2


def test_marker_restriction_is_saved_and_reproduced(data, tmp_path, capsys):
    first = tmp_path / "first.csv"
    sess = tmp_path / "marker.json"
    assert main(["-q", "score", "--spots", str(data["spots"]), "--rois", str(data["rois"]),
                 "--image", str(data["image"]), "--marker", "macrophages", "--min-positive", "15",
                 "--out", str(first), "--save-session", str(sess)]) == EXIT_OK
    marker = json.loads(sess.read_text())["marker"]
    assert marker["channel"] == "CD68" and marker["threshold_method"] == "otsu"
    assert isinstance(marker["threshold"], float) and marker["min_fraction"] == 0.15
    again = tmp_path / "again.csv"
    assert main(["-q", "score", "--session", str(sess), "--out", str(again)]) == EXIT_OK
    assert again.read_text() == first.read_text()
    s = load_session(sess)
    unrestricted = table_for(data["spots"], s.rois, EXAMPLE_PANEL)
    restricted = score_session(s)
    assert restricted["spots"].sum() < unrestricted["spots"].sum()
    assert same_numbers(restricted, s.results)
    with pytest.raises(RoiScoreError, match="needs the image"):
        make_session(spots=data["spots"], rois=data["rois"], signature=SIG, marker={"channel": "CD68"})


# -- read_spots: every kind the napari reader opens (one core dispatch) ----------------
def _geomx_export_tables(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    aois = [f"s1 | {i:03d} | PanCK" for i in range(1, 5)]
    seg = pd.DataFrame({"SegmentDisplayName": aois, "SlideName": "s1", "ScanLabel": "s1",
                        "ROILabel": [f"{i:03d}" for i in range(1, 5)], "SegmentLabel": "PanCK",
                        "AOISurfaceArea": 50000.0, "ROICoordinateX": [1000, 2000, 1000, 2000],
                        "ROICoordinateY": [1000, 1000, 2000, 2000]})
    genes = ["CD68", "CD163", *[f"G{i}" for i in range(30)]]
    cnt = pd.DataFrame(np.random.default_rng(0).poisson(20, (len(genes), 4)), columns=aois)
    cnt.insert(0, "TargetName", genes)
    folder.mkdir(parents=True, exist_ok=True)
    seg.to_csv(folder / "Sample_Annotations.csv", index=False)
    cnt.to_csv(folder / "TargetCountMatrix.csv", index=False)
    return seg, cnt


def test_read_spots_reads_geomx_exports_as_the_napari_reader_does(tmp_path):
    from napari_roiscore.spots.reading import read_spots

    seg, cnt = _geomx_export_tables(tmp_path / "export")
    folder = read_spots(tmp_path / "export")
    assert list(folder.adata.obs_names) == seg["SegmentDisplayName"].tolist()
    assert "aoi_diameter_px" in folder.adata.obs
    with pd.ExcelWriter(tmp_path / "export.xlsx") as w:
        seg.to_excel(w, sheet_name="SegmentProperties", index=False)
        cnt.to_excel(w, sheet_name="TargetCountMatrix", index=False)
    book = read_spots(tmp_path / "export.xlsx")
    np.testing.assert_array_equal(book.adata.X.toarray(), folder.adata.X.toarray())


def test_cli_scores_a_geomx_export_folder(tmp_path, capsys):
    _geomx_export_tables(tmp_path / "export")
    rois = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"name": "all"},
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [3000, 0], [3000, 3000], [0, 3000], [0, 0]]]}}]}
    (tmp_path / "rois.geojson").write_text(json.dumps(rois))
    rc = main(["score", "--spots", str(tmp_path / "export"), "--rois", str(tmp_path / "rois.geojson")])
    assert rc == EXIT_OK, capsys.readouterr().err
    assert "all," in capsys.readouterr().out


def test_read_spots_sends_a_spatialdata_store_to_its_reader(tmp_path):
    import importlib.util

    import zarr

    from napari_roiscore.spots.reading import read_spots

    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    root.create_group("tables")
    root.create_group("shapes")
    if importlib.util.find_spec("spatialdata") is None:
        with pytest.raises(RoiScoreError, match=r"napari-roiscore\[spatialdata\]"):
            read_spots(tmp_path / "s.zarr")
    else:  # an empty store: the SpatialData reader's own message, not the GeoMx NGS one
        with pytest.raises(RoiScoreError) as err:
            read_spots(tmp_path / "s.zarr")
        assert "dcc" not in str(err.value).lower()


def test_read_spots_names_the_missing_space_ranger_file(tmp_path):
    from napari_roiscore.spots.reading import read_spots

    outs = tmp_path / "outs"
    (outs / "spatial").mkdir(parents=True)
    (outs / "spatial" / "tissue_positions.csv").write_text("barcode,in_tissue,array_row,array_col,"
                                                          "pxl_row_in_fullres,pxl_col_in_fullres\n")
    with pytest.raises(RoiScoreError, match="Space Ranger folder.*filtered_feature_bc_matrix"):
        read_spots(tmp_path)
    from tenx_fixtures import write_10x_h5

    write_10x_h5(outs / "filtered_feature_bc_matrix.h5", np.ones((1, 2)), ["AAAC-1"], ["E1", "E2"], ["A", "B"])
    with pytest.raises(RoiScoreError, match="Space Ranger folder.*scalefactors_json.json"):
        read_spots(tmp_path)
