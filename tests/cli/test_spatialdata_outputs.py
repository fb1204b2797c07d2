"""ROIs and scores written into a SpatialData store from the CLI (``roiscore score
--to-spatialdata``) and refused, before any work, when the optional extra is missing
(issue 14, item 5: "write ROIs ... into a store")."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

from napari_roiscore.cli import EXIT_INVALID, EXIT_OK, main

HAS_SPATIALDATA = importlib.util.find_spec("spatialdata") is not None


def _score(slide: dict, *extra: str) -> int:
    return main(["-q", "score", "--spots", str(slide["spots"]), "--rois", str(slide["rois"]),
                 "--genes", "CD68,CD163,STAB1", *extra])


@pytest.mark.skipif(HAS_SPATIALDATA, reason="spatialdata is installed: the missing-package refusal cannot show")
def test_to_spatialdata_without_the_extra_is_refused_before_any_output(slide, tmp_path, capsys):
    out = tmp_path / "table.csv"
    assert _score(slide, "--out", str(out), "--to-spatialdata", str(tmp_path / "s.zarr")) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "napari-roiscore[spatialdata]" in err and "--to-spatialdata" in err
    assert not out.exists() and not (tmp_path / "s.zarr").exists()


def test_to_spatialdata_over_a_file_that_is_not_a_store_is_refused_and_kept(slide, tmp_path, capsys):
    if not HAS_SPATIALDATA:
        pytest.skip("needs spatialdata: without it the missing extra is refused first (test above)")
    before = slide["spots"].read_bytes()
    assert _score(slide, "--out", str(tmp_path / "t.csv"), "--to-spatialdata", str(slide["spots"])) == EXIT_INVALID
    assert "not a SpatialData store" in capsys.readouterr().err
    assert slide["spots"].read_bytes() == before


def test_to_spatialdata_writes_rois_and_scores_that_read_back(slide, tmp_path):
    pytest.importorskip("spatialdata")
    from napari_roiscore.readers.spatialdata_rois import read_rois_from_spatialdata
    from napari_roiscore.rois.geojson import read_geojson

    out, store = tmp_path / "t.csv", tmp_path / "slide.zarr"
    assert _score(slide, "--out", str(out), "--to-spatialdata", str(store)) == EXIT_OK
    table = pd.read_csv(out, dtype={"roi": str})
    rois, obs = read_rois_from_spatialdata(store)
    drawn = {r.name: r for r in read_geojson(slide["rois"])}
    assert sorted(r.name for r in rois) == sorted(drawn) == sorted(table["roi"].astype(str))
    for r in rois:
        assert r.roi_class == drawn[r.name].roi_class
        assert r.geometry.symmetric_difference(drawn[r.name].geometry).area < 1e-6 * drawn[r.name].geometry.area
    got = obs.set_index("name")["score"].astype(float)
    want = table.set_index(table["roi"].astype(str))["score"]
    pd.testing.assert_series_equal(got.loc[want.index], want, check_names=False, rtol=1e-12)
