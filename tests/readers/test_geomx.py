"""GeoMx DSP NGS reader on the real GeomxTools example and on a tiny generated kit."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.readers.geomx import (
    GRID_PITCH_PX,
    combine_probes,
    read_dcc,
    read_geomx_ngs,
    read_pkc,
)
from real_data import real_data



@pytest.fixture(scope="module")
def geomx_dir() -> Path:
    return real_data("geomx_ngs_example")


@pytest.fixture(scope="module")
def geomx(geomx_dir):
    return read_geomx_ngs(geomx_dir)


def test_combine_probes_matches_geomxtools_ngeomean():
    counts = np.array([[0, 1, 2, 2, 4, 9, 7],
                       [3, 3, 3, 3, 0, 0, 0]], dtype=float)
    targets = np.array(["B", "B", "B", "B", "A", "A", "C"])
    vals, names = combine_probes(counts, targets)
    assert list(names) == ["A", "B", "C"]
    # AOI 1: A = geomean(4, 9) = 6; B has a 0 -> all + 0.5; C single probe
    np.testing.assert_allclose(vals[0], [6.0, np.exp(np.mean(np.log([0.5, 1.5, 2.5, 2.5]))), 7.0])
    # AOI 2: A all 0 -> 0.5; B = 3; C 0 -> 0.5
    np.testing.assert_allclose(vals[1], [0.5, 3.0, 0.5])


def test_real_geomx_one_observation_per_aoi(geomx, geomx_dir):
    ad = geomx.adata
    assert ad.n_obs == 88  # 88 AOIs; the no-template control well is left out
    assert ad.n_vars == 1812 + 9  # CTA targets + six-gene custom panel targets
    assert set(ad.var["module"]) == {"VnV_GeoMx_Hs_CTA_v1.2", "Six-gene_test_v1_v1.1"}
    assert ad.var.loc["Negative Probe", "negative_probe"] and ad.var.loc["Negative Probe", "n_probes"] == 75
    assert not ad.var.loc["ZNF207", "negative_probe"]
    assert "DSP-1001250002642-A01" not in ad.obs_names and "is_ntc" not in ad.obs
    assert geomx.provenance["ntc_wells_left_out"] == ["DSP-1001250002642-A01"]
    assert geomx.provenance["n_ntc_wells_left_out"] == 1
    assert len(geomx.provenance["dcc"]) == 88
    assert ad.obs["in_tissue"].all()
    assert ad.obs["ntc_count"].nunique() == 1 and (ad.obs["ntc_count"] > 0).all()
    assert ad.obs.loc["DSP-1001250002642-A02", "cell_line"] == "HS578T"
    assert ad.obs.loc["DSP-1001250002642-A06", "Aligned"] == 744669
    assert geomx.provenance["annotations"].endswith("annotations.xlsx")


def test_real_geomx_gene_is_geometric_mean_of_its_probes(geomx, geomx_dir):
    with zipfile.ZipFile(geomx_dir / "pkcs.zip") as z:
        kit = json.loads(z.read("Six-gene_test_v1_v1.1.pkc"))
    rts = [p["RTS_ID"] for t in kit["Targets"] if t["DisplayName"] == "ZNF207" for p in t["Probes"]]
    text = (geomx_dir / "dcc" / "DSP-1001250002642-A06.dcc").read_text()
    summary = dict(line.split(",") for line in text.split("<Code_Summary>")[1].split("</Code_Summary>")[0].split())
    c = np.array([float(summary.get(r, 0)) for r in rts])
    if c.min() < 0.5:
        c = c + 0.5
    expected = np.exp(np.log(c).mean())
    got = geomx.adata[("DSP-1001250002642-A06"), "ZNF207"].X.toarray().item()
    assert got == pytest.approx(expected)


def test_real_geomx_grid_layout_is_flagged(geomx):
    ad = geomx.adata
    assert not ad.obs["has_coordinates"].any()
    assert geomx.provenance["coordinates"].startswith("grid")
    xy = geomx.xy
    # one row per slide (4 slides x 22 AOIs); the NTC well is not drawn
    rows = pd.Series(xy[:, 1]).groupby(ad.obs["slide name"].to_numpy()).unique()
    assert all(len(r) == 1 for r in rows)
    assert sorted(np.unique(xy[:, 1])) == [0, GRID_PITCH_PX, 2 * GRID_PITCH_PX, 3 * GRID_PITCH_PX]
    assert len(np.unique(xy, axis=0)) == ad.n_obs  # no two AOIs on one spot


# -- a tiny generated kit -----------------------------------------------------
def _dcc(sample: str, counts: dict[str, int]) -> str:
    body = "\n".join(f"{k},{v}" for k, v in counts.items())
    return (f"<Header>\nFileVersion,0.01\n</Header>\n\n<Scan_Attributes>\nID,{sample}\nWell,A01\n"
            f"</Scan_Attributes>\n\n<NGS_Processing_Attributes>\nRaw,100\nAligned,90\n"
            f"</NGS_Processing_Attributes>\n\n<Code_Summary>\n{body}\n</Code_Summary>\n")


def _kit(folder: Path, with_coordinates: bool = True) -> Path:
    folder.mkdir(parents=True)
    pkc = {"Name": "tiny", "Targets": [
        {"DisplayName": "CD68", "CodeClass": "Endogenous", "Probes": [{"RTS_ID": "RTS1"}, {"RTS_ID": "RTS2"}]},
        {"DisplayName": "STAB1", "CodeClass": "Endogenous", "Probes": [{"RTS_ID": "RTS3"}]},
        {"DisplayName": "NegProbe", "CodeClass": "Negative", "Probes": [{"RTS_ID": "RTS4"}]},
    ]}
    (folder / "tiny_v1.pkc").write_text(json.dumps(pkc))
    (folder / "S1.dcc").write_text(_dcc("S1", {"RTS1": 4, "RTS2": 16, "RTS3": 5, "RTS4": 1, "RTS99": 7}))
    (folder / "S2.dcc").write_text(_dcc("S2", {"RTS1": 9, "RTS2": 1}))
    ann = pd.DataFrame({"Sample_ID": ["S1.dcc", "S2"], "slide name": ["s1", "s1"],
                        "segment": ["tumour", "stroma"]})
    if with_coordinates:
        ann["ROICoordinateX"] = [1200.0, 3400.0]
        ann["ROICoordinateY"] = [800.0, 900.0]
    ann.to_excel(folder / "annotations.xlsx", index=False)
    return folder


def test_generated_kit_with_roi_coordinates(tmp_path):
    s = read_geomx_ngs(_kit(tmp_path / "kit"))
    ad = s.adata
    assert list(ad.obs_names) == ["S1", "S2"]
    assert list(ad.var_names) == ["CD68", "NegProbe", "STAB1"]
    np.testing.assert_allclose(ad.X.toarray(), [[8.0, 1.0, 5.0], [3.0, 0.5, 0.5]])
    np.testing.assert_array_equal(s.xy, [[1200.0, 800.0], [3400.0, 900.0]])
    assert ad.obs["has_coordinates"].all()
    assert s.provenance["dcc_probes_not_in_pkc"] == 1  # RTS99


def test_generated_kit_without_coordinates_uses_grid(tmp_path):
    s = read_geomx_ngs(_kit(tmp_path / "kit", with_coordinates=False))
    np.testing.assert_array_equal(s.xy, [[0.0, 0.0], [GRID_PITCH_PX, 0.0]])
    assert not s.adata.obs["has_coordinates"].any()


def test_generated_kit_leaves_the_ntc_well_out_of_the_statistics(tmp_path):
    """The NTC (a control with ~no counts) is no sample: GeomxTools leaves it
    out, and so do we — it must not shift normalisation or z-scores."""
    from napari_roiscore.scoring.methods import score_spots
    from napari_roiscore.scoring.signature import Signature

    kit = _kit(tmp_path / "kit", with_coordinates=False)
    without = read_geomx_ngs(kit)
    (kit / "NTC.dcc").write_text(_dcc("NTC", {"RTS1": 1}))
    pd.DataFrame({"Sample_ID": ["NTC", "S1.dcc", "S2"], "slide name": ["No Template Control", "s1", "s1"],
                  "segment": ["", "tumour", "stroma"]}).to_excel(kit / "annotations.xlsx", index=False)
    s = read_geomx_ngs(kit)
    assert list(s.adata.obs_names) == ["S1", "S2"]
    assert s.provenance["ntc_wells_left_out"] == ["NTC"] and s.provenance["n_ntc_wells_left_out"] == 1
    assert (s.adata.obs["ntc_count"] == 1).all()
    np.testing.assert_array_equal(s.xy, without.xy)
    sig = Signature("s", up=("CD68",), down=("STAB1",))
    np.testing.assert_allclose(score_spots(s, sig).values, score_spots(without, sig).values)


def test_generated_kit_missing_inputs_are_named(tmp_path):
    kit = _kit(tmp_path / "kit")
    (kit / "annotations.xlsx").unlink()
    with pytest.raises(RoiScoreError, match="xlsx"):
        read_geomx_ngs(kit)
    (kit / "tiny_v1.pkc").unlink()
    with pytest.raises(RoiScoreError, match="pkc"):
        read_geomx_ngs(kit)
    with pytest.raises(RoiScoreError, match="PKC file .*nope.pkc"):
        read_pkc(kit / "nope.pkc")
    with pytest.raises(RoiScoreError, match="Code_Summary"):
        (kit / "bad.dcc").write_text("<Header>\n</Header>\n")
        read_dcc(kit / "bad.dcc")


def test_annotations_of_other_dccs_are_refused(tmp_path):
    kit = _kit(tmp_path / "kit")
    pd.DataFrame({"Sample_ID": ["X1", "X2"]}).to_excel(kit / "annotations.xlsx", index=False)
    with pytest.raises(RoiScoreError, match="no DCC file matches"), pytest.warns(UserWarning):
        read_geomx_ngs(kit)


def test_progress_is_reported_once_per_dcc_file(tmp_path):
    calls: list[tuple[int, int]] = []
    s = read_geomx_ngs(_kit(tmp_path / "kit"), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)] and s.n_spots == 2


def test_real_geomx_progress_counts_every_dcc(geomx_dir):
    calls: list[tuple[int, int]] = []
    read_geomx_ngs(geomx_dir, progress=lambda done, total: calls.append((done, total)))
    assert [d for d, _ in calls] == list(range(1, 90)) and {t for _, t in calls} == {89}


def test_napari_progress_bar_follows_the_callback():
    pytest.importorskip("napari")
    import napari.utils  # noqa: F401  - napari loaded, as inside the viewer

    from napari_roiscore._reader import _StepProgress

    step = _StepProgress("reading DCC files")
    for i in range(1, 6):
        step(i, 5)
    bar = step._bar
    assert bar.n == 5 and bar.total == 5 and bar.desc.startswith("reading DCC files")
    step.close()
    assert step.done == 5


def test_dcc_with_a_non_numeric_count_is_named(tmp_path):
    p = tmp_path / "x.dcc"
    p.write_text(_dcc("x", {"RTS1": 3}).replace("RTS1,3", "RTS1,three"))
    with pytest.raises(RoiScoreError, match="RTS1,three"):
        read_dcc(p)


def test_dcc_probe_ids_renamed_and_duplicates_summed(tmp_path):
    p = tmp_path / "x.dcc"
    p.write_text(_dcc("x", {"RNA0001": 3, "RTS0002": 4}) .replace("RTS0002,4", "RTS0002,4\nRTS0002,1"))
    cs = read_dcc(p)["Code_Summary"]
    assert cs.to_dict() == {"RTS000001": 3.0, "RTS0002": 5.0}
    assert read_dcc(p)["NGS_Processing_Attributes"]["Aligned"] == "90"
