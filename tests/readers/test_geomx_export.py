"""GeoMx DSP analysis-suite exports (segment properties + counts) on generated workbooks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from napari_roiscore._reader import folder_kind, get_reader, read_paths
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.readers.geomx import GRID_PITCH_PX, GRID_SPOT_DIAMETER_PX, combine_probes
from napari_roiscore.readers.geomx_export import (
    GEOMX_SCAN_PIXEL_SIZE_UM,
    detect_counts_kind,
    find_geomx_export,
    is_geomx_export,
    read_geomx_export,
)
from napari_roiscore.scoring.methods import score_spots
from napari_roiscore.scoring.signature import Signature

# -- a small but DSP-shaped export ----------------------------------------------
# two scans, ROIs 004 (tumour) and 007 (stroma), each split into a PanCK+ and a CD68+ segment
SCANS = {"Breast-01 scan": ("Breast-01", {"004": (5200.0, 8100.0), "007": (9300.0, 4100.0)}),
         "Breast-02 scan": ("Breast-02", {"004": (3000.0, 6000.0), "007": (7000.0, 2500.0)})}
AREA = {("004", "PanCK"): 180_000.0, ("004", "CD68"): 25_000.0, ("007", "PanCK"): 8_000.0,
        ("007", "CD68"): 60_000.0}
PROBES = [  # ProbeName, TargetName, CodeClass
    ("RTS0020877", "CD68", "Endogenous"), ("RTS0020878", "CD163", "Endogenous"),
    ("RTS0020879", "STAB1", "Endogenous"), ("RTS0020880", "MRC1", "Endogenous"),
    ("RTS0020881", "KRT18", "Endogenous"), ("RTS0020882", "KRT18", "Endogenous"),
    ("RTS0020883", "EPCAM", "Endogenous"), ("RTS0020884", "PECAM1", "Endogenous"),
    ("RTS0020885", "ACTB", "Endogenous"), ("RTS0020886", "MKI67", "Endogenous"),
    ("RTS0051001", "NegProbe-WTX", "Negative"), ("RTS0051002", "NegProbe-WTX", "Negative"),
    ("RTS0051003", "NegProbe-WTX", "Negative"), ("RTS0051004", "NegProbe-WTX", "Negative"),
]
MACROPHAGE = {"CD68", "CD163", "STAB1", "MRC1"}
CANCER = {"KRT18", "EPCAM", "MKI67"}


def _segments() -> pd.DataFrame:
    rows = []
    for scan, (slide, rois) in SCANS.items():
        for roi, (x, y) in rois.items():
            for seg in ("PanCK", "CD68"):
                rows.append({
                    "SlideName": slide, "ScanLabel": scan, "ROILabel": roi, "SegmentLabel": seg,
                    "SegmentDisplayName": f"{scan} | {roi} | {seg}",
                    "Sample_ID": f"DSP-1001660012345-A{len(rows) + 1:02d}",
                    "AOISurfaceArea": AREA[roi, seg], "AOINucleiCount": int(AREA[roi, seg] / 90),
                    "ROICoordinateX": x, "ROICoordinateY": y, "RawReads": 1_200_000 + 1000 * len(rows),
                    "SequencingSaturation": 88.5, "QCFlags": None,
                })
    return pd.DataFrame(rows)


def _probe_counts(seg: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    cols = {"ProbeName": [p[0] for p in PROBES], "ProbeDisplayName": [f"{p[1]} {p[0]}" for p in PROBES],
            "TargetName": [p[1] for p in PROBES], "HUGOSymbol": [p[1] if p[2] == "Endogenous" else "" for p in PROBES],
            "CodeClass": [p[2] for p in PROBES], "ProbePool": ["1"] * len(PROBES)}
    for _, aoi in seg.iterrows():
        scale = aoi["AOINucleiCount"] / 200
        mean = np.array([(40 if t in MACROPHAGE and aoi["SegmentLabel"] == "CD68" else
                          60 if t in CANCER and aoi["SegmentLabel"] == "PanCK" else
                          120 if t == "ACTB" else 3 if c == "Negative" else 8) for _, t, c in PROBES])
        cols[aoi["SegmentDisplayName"]] = rng.poisson(mean * scale + 0.5)
    return pd.DataFrame(cols)


def _target_counts(probes: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    vals, targets = combine_probes(probes[names].to_numpy(float).T, probes["TargetName"].to_numpy())
    return pd.DataFrame(vals.T, columns=names).assign(TargetName=targets)[["TargetName", *names]]


def _q3(targets: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    x = targets[names].to_numpy(float)
    endo = ~targets["TargetName"].str.startswith("NegProbe").to_numpy()
    q3 = np.percentile(x[endo], 75, axis=0)
    out = targets.copy()
    out[names] = np.round(x / q3 * np.exp(np.log(q3).mean()), 4)
    return out


def _write_workbook(path: Path, sheets: dict[str, pd.DataFrame | None]) -> Path:
    """Write sheets with openpyxl, the way the DSP export lays them out (header row, then data)."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, df in sheets.items():
        ws = wb.create_sheet(name)
        if df is None:  # a free-text sheet such as the DSP's dataset summary
            ws.append(["GeoMx DSP export", "generated for tests"])
            continue
        ws.append(list(df.columns))
        for row in df.itertuples(index=False):
            ws.append([None if (isinstance(v, float) and np.isnan(v)) else
                       (v.item() if isinstance(v, np.generic) else v) for v in row])
    wb.save(path)
    return path


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("dsp")
    seg = _segments()
    names = seg["SegmentDisplayName"].tolist()
    probes = _probe_counts(seg)
    targets = _target_counts(probes, names)
    q3 = _q3(targets, names)
    target_props = pd.DataFrame({"TargetName": targets["TargetName"], "CodeClass": "Endogenous"})
    raw_xlsx = _write_workbook(folder / "Initial Dataset.xlsx", {
        "Dataset Summary": None, "SegmentProperties": seg, "TargetProperties": target_props,
        "BioProbeCountMatrix": probes, "TargetCountMatrix": targets, "Q3Norm_TargetCountMatrix": q3})
    (folder / "second").mkdir()
    q3_xlsx = _write_workbook(folder / "second" / "Second export.xlsx",
                              {"SegmentProperties": seg, "TargetCountMatrix": q3})
    return {"folder": folder, "raw": raw_xlsx, "q3": q3_xlsx, "seg": seg, "names": names, "probes": probes,
            "targets": targets, "q3_values": q3}


def _matrix(spots) -> pd.DataFrame:
    return pd.DataFrame(spots.adata.X.toarray(), index=spots.adata.obs_names, columns=spots.adata.var_names)


# -- tests ------------------------------------------------------------------------
def test_workbook_gives_one_spot_per_aoi_from_the_raw_target_matrix(export):
    s = read_geomx_export(export["raw"])
    ad = s.adata
    assert list(ad.obs_names) == export["names"]
    assert s.provenance["counts"] == "Initial Dataset.xlsx[TargetCountMatrix]"
    assert s.provenance["segments"] == "Initial Dataset.xlsx[SegmentProperties]"
    assert s.provenance["counts_kind"] == "raw" and ad.uns["roiscore"]["counts_kind"] == "raw"
    t = export["targets"].set_index("TargetName")
    pd.testing.assert_frame_equal(_matrix(s), t.T.loc[export["names"], list(ad.var_names)], check_names=False)
    assert ad.obs.loc["Breast-01 scan | 004 | CD68", "AOINucleiCount"] == int(25_000 / 90)
    assert ad.var.loc["NegProbe-WTX", "negative_probe"] and not ad.var.loc["CD68", "negative_probe"]
    assert ad.obs["in_tissue"].all()


def test_aois_sit_at_their_roi_centre_as_circles_of_their_area(export):
    s = read_geomx_export(export["raw"])
    obs = s.adata.obs
    assert obs["has_coordinates"].all() and s.pixel_size_um == pytest.approx(GEOMX_SCAN_PIXEL_SIZE_UM)
    first = (obs["ScanLabel"] == "Breast-01 scan").to_numpy()
    # scan 1 keeps its own coordinates; both segments of one ROI share its centre
    np.testing.assert_array_equal(s.xy[first], obs.loc[first, ["ROICoordinateX", "ROICoordinateY"]].to_numpy(float))
    # scan 2 is moved right of scan 1 (same y), by the offset it records
    assert s.xy[~first, 0].min() > s.xy[first, 0].max()
    np.testing.assert_array_equal(s.xy[~first, 1], obs.loc[~first, "ROICoordinateY"].to_numpy(float))
    np.testing.assert_allclose(s.xy[~first, 0] - obs.loc[~first, "scan_offset_x"],
                               obs.loc[~first, "ROICoordinateX"].to_numpy(float))
    # circle area (in µm²) == AOISurfaceArea
    r_um = obs["aoi_diameter_px"].to_numpy() * GEOMX_SCAN_PIXEL_SIZE_UM / 2
    np.testing.assert_allclose(np.pi * r_um ** 2, obs["AOISurfaceArea"].to_numpy(float))
    assert s.diameter_px == pytest.approx(np.median(obs["aoi_diameter_px"]))
    assert "assumed" in s.provenance["pixel_size_source"]


def test_one_scan_at_its_own_coordinates_and_given_pixel_size(export):
    s = read_geomx_export(export["raw"], scan="Breast-02 scan", pixel_size_um=0.5)
    assert s.n_spots == 4 and set(s.adata.obs["SlideName"]) == {"Breast-02"}
    np.testing.assert_array_equal(s.xy, s.adata.obs[["ROICoordinateX", "ROICoordinateY"]].to_numpy(float))
    d = s.adata.obs["aoi_diameter_px"].to_numpy()
    np.testing.assert_allclose(np.pi * (d * 0.5 / 2) ** 2, s.adata.obs["AOISurfaceArea"].to_numpy(float))
    assert s.provenance["pixel_size_source"] == "given"
    # by slide name too; an unknown scan lists the ones there are
    assert read_geomx_export(export["raw"], scan="Breast-01").n_spots == 4
    with pytest.raises(RoiScoreError, match="Breast-01 scan"):
        read_geomx_export(export["raw"], scan="Breast-09")


def test_probe_matrix_is_combined_per_target_like_the_dsp(export):
    s = read_geomx_export(export["raw"], counts_sheet="BioProbeCountMatrix")
    assert s.provenance["probe_aggregation"].startswith("GeomxTools ngeoMean")
    assert s.provenance["counts_kind"] == "raw"
    raw = export["probes"].set_index("ProbeName")
    a, b = raw.loc["RTS0020881", export["names"][0]], raw.loc["RTS0020882", export["names"][0]]
    shift = 0.5 if min(a, b) < 0.5 else 0.0
    assert _matrix(s).loc[export["names"][0], "KRT18"] == pytest.approx(np.sqrt((a + shift) * (b + shift)))
    assert s.adata.var.loc["KRT18", "n_probes"] == 2 and s.adata.var.loc["NegProbe-WTX", "n_probes"] == 4
    assert s.adata.var.loc["CD68", "HUGOSymbol"] == "CD68"
    target = read_geomx_export(export["raw"])
    np.testing.assert_allclose(_matrix(s).to_numpy(), _matrix(target).to_numpy())


def test_q3_values_are_recognised_without_a_q3_name(export):
    s = read_geomx_export(export["q3"])
    assert s.provenance["counts"] == "Second export.xlsx[TargetCountMatrix]"
    assert s.provenance["counts_kind"] == "q3" and "75th percentile" in s.provenance["counts_kind_reason"]
    assert s.adata.uns["roiscore"]["counts_kind"] == "q3"
    q3 = export["q3_values"].set_index("TargetName")
    np.testing.assert_allclose(_matrix(s).to_numpy(), q3.T.loc[export["names"], list(s.adata.var_names)].to_numpy())
    # mean-z and pseudobulk run on the Q3 values as they are; the provenance keeps saying q3
    sig = Signature("macrophage", up=("CD68", "CD163", "STAB1", "MRC1"))
    for method in ("mean_z", "pseudobulk"):
        scores = score_spots(s, sig, method=method)
        assert np.isfinite(scores.values).all()
        cd68 = s.adata.obs["SegmentLabel"].eq("CD68").to_numpy()
        assert scores.values[cd68].mean() > scores.values[~cd68].mean()
    assert s.provenance["counts_kind"] == "q3"


def test_q3_sheet_chosen_by_name_only_when_asked(export):
    assert read_geomx_export(export["raw"]).provenance["counts"].endswith("[TargetCountMatrix]")
    s = read_geomx_export(export["raw"], counts_kind="q3")
    assert s.provenance["counts"].endswith("[Q3Norm_TargetCountMatrix]")
    assert s.provenance["counts_kind"] == "q3" and s.provenance["counts_kind_reason"] == "given by the caller"
    s = read_geomx_export(export["raw"], counts_sheet="Q3Norm_TargetCountMatrix")
    assert s.provenance["counts_kind"] == "q3" and "name" in s.provenance["counts_kind_reason"]


def test_separate_text_tables_in_a_folder(export, tmp_path):
    seg, names = export["seg"], export["names"]
    seg.to_csv(tmp_path / "Sample_Annotations.txt", sep="\t", index=False)
    export["q3_values"].to_csv(tmp_path / "Q3Norm_TargetCountMatrix.txt", sep="\t", index=False)
    pd.DataFrame({"TargetName": export["targets"]["TargetName"], "CodeClass": "Endogenous"}).to_csv(
        tmp_path / "TargetProperties.txt", sep="\t", index=False)
    found = find_geomx_export(tmp_path)
    assert found["segments"] == [(tmp_path / "Sample_Annotations.txt", None)]
    s = read_geomx_export(tmp_path)
    assert s.provenance["counts"] == "Q3Norm_TargetCountMatrix.txt"
    assert s.provenance["counts_kind"] == "q3" and list(s.adata.obs_names) == names
    # explicit files, CSV this time: raw probe counts
    seg.to_csv(tmp_path / "segments.csv", index=False)
    export["probes"].to_csv(tmp_path / "probe counts.csv", index=False)
    s = read_geomx_export(segments=tmp_path / "segments.csv", counts=tmp_path / "probe counts.csv")
    assert s.provenance["counts_kind"] == "raw" and s.n_spots == len(names)
    assert s.adata.var.loc["KRT18", "n_probes"] == 2


def test_without_coordinates_aois_go_on_a_flagged_grid_sized_by_area(export, tmp_path):
    seg = export["seg"].drop(columns=["ROICoordinateX", "ROICoordinateY"])
    xlsx = _write_workbook(tmp_path / "e.xlsx", {"SegmentProperties": seg, "TargetCountMatrix": export["targets"]})
    s = read_geomx_export(xlsx, counts_kind="raw")
    obs = s.adata.obs
    assert not obs["has_coordinates"].any() and s.provenance["coordinates"].startswith("grid")
    assert s.pixel_size_um is None
    assert sorted(np.unique(s.xy[:, 1])) == [0.0, GRID_PITCH_PX]  # one row per slide
    assert obs["aoi_diameter_px"].max() == pytest.approx(GRID_SPOT_DIAMETER_PX)
    big = obs["AOISurfaceArea"].astype(float).idxmax()
    small = obs["AOISurfaceArea"].astype(float).idxmin()
    ratio = obs.loc[big, "aoi_diameter_px"] / obs.loc[small, "aoi_diameter_px"]
    assert ratio == pytest.approx(np.sqrt(180_000 / 8_000))


def test_partial_coordinates_fall_back_to_the_grid_with_a_warning(export, tmp_path):
    seg = export["seg"].copy()
    seg.loc[2, "ROICoordinateX"] = np.nan
    xlsx = _write_workbook(tmp_path / "e.xlsx", {"SegmentProperties": seg, "TargetCountMatrix": export["targets"]})
    with pytest.warns(UserWarning, match="no ROI coordinates"):
        s = read_geomx_export(xlsx, counts_kind="raw")
    assert not s.adata.obs["has_coordinates"].any()


def test_aoi_without_counts_is_left_out_with_a_warning(export, tmp_path):
    targets = export["targets"].drop(columns=[export["names"][3]])
    xlsx = _write_workbook(tmp_path / "e.xlsx", {"SegmentProperties": export["seg"], "TargetCountMatrix": targets})
    with pytest.warns(UserWarning, match="1 AOI"):
        s = read_geomx_export(xlsx, counts_kind="raw")
    assert s.n_spots == 7 and s.provenance["aois_without_counts"] == [export["names"][3]]


def test_unknown_normalisation_warns_and_is_not_called_raw(export, tmp_path):
    t = export["targets"].copy()
    t[export["names"]] = t[export["names"]] * np.linspace(0.37, 2.9, len(export["names"]))  # e.g. area-scaled
    xlsx = _write_workbook(tmp_path / "e.xlsx", {"SegmentProperties": export["seg"], "TargetCountMatrix": t})
    with pytest.warns(UserWarning, match="counts_kind='raw'"):
        s = read_geomx_export(xlsx)
    assert s.provenance["counts_kind"] == "normalised"
    assert read_geomx_export(xlsx, counts_kind="raw").provenance["counts_kind"] == "raw"


def test_detect_counts_kind():
    rng = np.random.default_rng(0)
    raw = rng.poisson(20, size=(200, 6)).astype(float)
    neg = np.zeros(200, bool)
    neg[-1] = True
    raw_with_neg_geomean = raw.copy()
    raw_with_neg_geomean[-1] = [2.3, 4.1, 3.3, 2.0, 5.7, 1.2]
    assert detect_counts_kind(raw)[0] == "raw"
    assert detect_counts_kind(raw_with_neg_geomean, negative=neg)[0] == "raw"
    q3 = np.percentile(raw, 75, axis=0)
    norm = raw / q3 * np.exp(np.log(q3).mean())
    assert detect_counts_kind(norm) == ("q3", "every AOI has the same 75th percentile (the mark of Q3 normalisation)")
    assert detect_counts_kind(raw, "Q3Norm_TargetCountMatrix")[0] == "q3"
    assert detect_counts_kind(raw * 1.5 + 0.25, "HKNorm_TargetCountMatrix")[0] == "normalised"
    assert detect_counts_kind(norm, "raw counts")[0] == "raw"


def test_bad_exports_name_the_table_and_field(export, tmp_path):
    seg, t, names = export["seg"], export["targets"], export["names"]
    only_seg = _write_workbook(tmp_path / "a.xlsx", {"SegmentProperties": seg})
    with pytest.raises(RoiScoreError, match="no counts table.*TargetName"):
        read_geomx_export(only_seg)
    only_counts = _write_workbook(tmp_path / "b.xlsx", {"TargetCountMatrix": t})
    with pytest.raises(RoiScoreError, match="no segment properties table.*SegmentDisplayName"):
        read_geomx_export(only_counts)
    other = t.rename(columns={n: f"other | {i}" for i, n in enumerate(names)})
    with pytest.raises(RoiScoreError, match="no counts table has columns named like the AOIs"):
        read_geomx_export(_write_workbook(tmp_path / "c.xlsx", {"SegmentProperties": seg, "TargetCountMatrix": other}))
    text = t.astype(object)
    text.loc[4, names[2]] = "n/a"
    with pytest.raises(RoiScoreError, match=f"'n/a' of target '{t.loc[4, 'TargetName']}' in AOI '{names[2]}'"):
        read_geomx_export(_write_workbook(tmp_path / "d.xlsx", {"SegmentProperties": seg, "TargetCountMatrix": text}))
    logged = t.copy()
    logged.loc[1, names[0]] = -1.5
    with pytest.raises(RoiScoreError, match="negative value -1.5"):
        read_geomx_export(_write_workbook(tmp_path / "e.xlsx", {"SegmentProperties": seg, "TargetCountMatrix": logged}))
    clash = pd.concat([seg, seg.iloc[[0]].assign(AOISurfaceArea=1.0)])
    with pytest.raises(RoiScoreError, match="different properties"):
        read_geomx_export(_write_workbook(tmp_path / "f.xlsx", {"SegmentProperties": clash, "TargetCountMatrix": t}))
    with pytest.raises(RoiScoreError, match="counts sheet 'Nope' not found"):
        read_geomx_export(export["raw"], counts_sheet="Nope")
    with pytest.raises(RoiScoreError, match="counts_kind 'log2'"):
        read_geomx_export(export["raw"], counts_kind="log2")
    with pytest.raises(RoiScoreError, match="does not exist"):
        read_geomx_export(tmp_path / "missing.xlsx")


def test_duplicate_identical_segment_rows_are_merged(export, tmp_path):
    seg = pd.concat([export["seg"], export["seg"].iloc[[0]]])
    s = read_geomx_export(_write_workbook(tmp_path / "e.xlsx", {"SegmentProperties": seg,
                                                                 "TargetCountMatrix": export["targets"]}),
                          counts_kind="raw")
    assert s.n_spots == len(export["names"])


# -- napari reader hook ---------------------------------------------------------
def test_napari_reader_opens_the_workbook_and_its_folder(export):
    assert is_geomx_export(export["raw"]) and is_geomx_export(export["folder"])
    assert folder_kind(export["folder"]) == "geomx_export"
    assert get_reader(str(export["raw"])) is not None
    layers = read_paths(str(export["raw"]))
    assert [k for _, _, k in layers] == ["points"]
    data, kw, _ = layers[0]
    assert data.shape == (8, 2)
    spots = kw["metadata"]["roiscore_spots"] if "roiscore_spots" in kw["metadata"] else next(
        iter(kw["metadata"].values()))
    np.testing.assert_allclose(kw["size"], spots.adata.obs["aoi_diameter_px"].to_numpy())
    assert [k for _, _, k in read_paths(str(export["folder"]))] == ["points"]


def test_napari_reader_leaves_other_workbooks_alone(tmp_path):
    xlsx = _write_workbook(tmp_path / "annotations.xlsx",
                           {"Sheet1": pd.DataFrame({"Sample_ID": ["A01"], "slide name": ["s1"]})})
    assert get_reader(str(xlsx)) is None and not is_geomx_export(tmp_path)
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")
    assert get_reader(str(tmp_path / "broken.xlsx")) is None
    assert folder_kind(tmp_path) is None
