"""Space Ranger (Visium) and Visium HD readers, on real data and generated fixtures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.readers import (
    read_spaceranger,
    read_tissue_positions,
    read_visium_hd,
    tissue_image_layer,
    tissue_images_from_uns,
)
from napari_roiscore.readers.visium import POSITION_COLUMNS
from tenx_fixtures import write_10x_h5, write_json
from real_data import real_data



@pytest.fixture(scope="module")
def visium_dir() -> Path:
    return real_data("visium_cytassist_mouse")


@pytest.fixture(scope="module")
def visium(visium_dir):
    return read_spaceranger(visium_dir)


def _linked_outs(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> Path:
    """A copy of ``src`` made of symlinks, without the entries in ``skip``."""
    dst.mkdir()
    (dst / "spatial").mkdir()
    for p in src.rglob("*"):
        rel = p.relative_to(src)
        if p.is_dir() or str(rel) in skip or rel.parts[0] in skip:
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(p, dst / rel)
    return dst


# -- Space Ranger on the real CytAssist mouse placenta run ------------------
def test_real_spaceranger_shape_and_fields(visium):
    ad = visium.adata
    assert ad.shape == (2898, 19465)
    assert ad.obs["in_tissue"].all()  # filtered matrix = spots under tissue
    assert ad.var["gene_ids"].str.startswith("ENSMUSG").all()
    assert "Cd68" in ad.var_names and "Stab1" in ad.var_names
    assert ad.var_names.is_unique
    assert visium.shape == "circle"
    # 55 µm spots; the pixel size is tested against the 100 µm pitch below
    assert visium.diameter_px * visium.pixel_size_um == pytest.approx(55.0)
    prov = visium.provenance
    assert prov["reader"] == "spaceranger"
    assert prov["matrix"].endswith("filtered_feature_bc_matrix.h5")
    assert prov["positions"].endswith("tissue_positions.csv")
    assert prov["software_version"] == "spaceranger-3.0.0"


def _row_neighbour_distances_um(spots) -> np.ndarray:
    """Distances between spots of one array row two array columns apart: lattice neighbours."""
    obs = spots.adata.obs
    key = {(r, c): i for i, (r, c) in enumerate(zip(obs["array_row"], obs["array_col"]))}
    pairs = [(i, key[(r, c + 2)]) for (r, c), i in key.items() if (r, c + 2) in key]
    xy_um = spots.xy * spots.pixel_size_um
    a, b = np.array(pairs).T
    return np.hypot(*(xy_um[a] - xy_um[b]).T)


def test_real_visium_pitch_reads_100_um_and_spots_55_um(visium):
    """Visium: 100 µm centre to centre, 55 µm spots, in the SpotTable's own µm units."""
    from scipy.spatial import cKDTree

    xy_um = visium.xy * visium.pixel_size_um
    nearest = cKDTree(xy_um).query(xy_um, k=2)[0][:, 1]
    assert np.median(nearest) == pytest.approx(100.0, rel=0.02)
    row_neighbours = _row_neighbour_distances_um(visium)  # independent of nearest neighbours
    assert len(row_neighbours) > 1000
    assert np.median(row_neighbours) == pytest.approx(100.0, rel=0.02)
    assert visium.diameter_px * visium.pixel_size_um == pytest.approx(55.0)
    # the old rule (55 µm / spot_diameter_fullres) read the pitch ~21 % short: this test sees it
    old_px = 55 / visium.adata.uns["spatial"][next(iter(visium.adata.uns["spatial"]))][
        "scalefactors"]["spot_diameter_fullres"]
    assert np.median(row_neighbours) / visium.pixel_size_um * old_px < 85.0
    assert "pitch" in visium.provenance["pixel_size_source"]


def test_real_visium_scale_matches_spot_diameter_fullres_without_warning(visium_dir, recwarn):
    s = read_spaceranger(visium_dir, load_images=False)
    assert not [w for w in recwarn if "µm/pixel" in str(w.message)]
    sf = s.adata.uns["spatial"][next(iter(s.adata.uns["spatial"]))]["scalefactors"]
    by_diameter = 65.0 / sf["spot_diameter_fullres"]  # Space Ranger: pixels across a 65 µm spot
    assert s.pixel_size_um == pytest.approx(by_diameter, rel=0.10)


def test_scalefactors_that_disagree_with_the_pitch_warn_and_the_pitch_wins(visium, visium_dir, tmp_path):
    outs = _linked_outs(visium_dir, tmp_path / "outs", skip=("spatial/scalefactors_json.json",))
    write_json(outs / "spatial" / "scalefactors_json.json",
               {"spot_diameter_fullres": 10.0, "tissue_lowres_scalef": 0.2, "tissue_hires_scalef": 0.6666667})
    with pytest.warns(UserWarning, match="spot pitch gives .* apart; using the pitch"):
        s = read_spaceranger(outs, load_images=False)
    assert s.pixel_size_um == pytest.approx(visium.pixel_size_um)


def test_real_h5_and_matrix_market_layouts_are_identical(visium, visium_dir):
    mtx = read_spaceranger(visium_dir, layout="mtx", load_images=False)
    assert mtx.provenance["matrix"].endswith("filtered_feature_bc_matrix")
    assert (visium.counts != mtx.counts).nnz == 0
    assert visium.counts.shape == mtx.counts.shape
    assert list(visium.adata.obs_names) == list(mtx.adata.obs_names)
    assert list(visium.adata.var["gene_ids"]) == list(mtx.adata.var["gene_ids"])
    np.testing.assert_array_equal(visium.xy, mtx.xy)


def test_real_spots_land_on_tissue_in_lowres_image(visium, visium_dir):
    """In-tissue spots sit on stained (darker) H&E; off-tissue positions on bright glass."""
    images = tissue_images_from_uns(visium.adata)
    assert [i.name for i in images] == ["lowres"]
    lowres = images[0]
    assert lowres.scale_factor == pytest.approx(0.2)
    pos = read_tissue_positions(visium_dir / "spatial" / "tissue_positions.csv")
    xy = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(float)
    grey = lowres.values_at(xy).mean(axis=1)
    on, off = grey[pos["in_tissue"] == 1].mean(), grey[pos["in_tissue"] == 0].mean()
    assert on < off - 40, (on, off)
    # the reader's own centres: same darkness as the in-tissue positions
    assert lowres.values_at(visium.xy).mean() == pytest.approx(on, abs=1.0)
    # swapping x and y (a classic bug) loses the contrast: the check can fail
    swapped = lowres.values_at(xy[:, ::-1]).mean(axis=1)
    assert abs(swapped[pos["in_tissue"] == 1].mean() - swapped[pos["in_tissue"] == 0].mean()) < 20


def test_tissue_image_layer_is_scaled_to_full_resolution(visium):
    lowres = tissue_images_from_uns(visium.adata)[0]
    data, kw, kind = tissue_image_layer(lowres, visium.pixel_size_um)
    assert kind == "image" and kw["rgb"]
    # image pixel (col 100) must be at the world position of full-res x = 100 / 0.2
    assert kw["scale"][1] * 100 == pytest.approx(500 * visium.pixel_size_um)


def test_old_headerless_positions_list(visium, visium_dir, tmp_path):
    outs = _linked_outs(visium_dir, tmp_path / "outs",
                        skip=("spatial/tissue_positions.csv", "filtered_feature_bc_matrix"))
    pos = pd.read_csv(visium_dir / "spatial" / "tissue_positions.csv")
    pos[POSITION_COLUMNS].to_csv(outs / "spatial" / "tissue_positions_list.csv", header=False, index=False)
    old = read_spaceranger(tmp_path, load_images=False)  # the run folder above outs/ works too
    assert old.provenance["positions"].endswith("tissue_positions_list.csv")
    np.testing.assert_allclose(old.xy, visium.xy, rtol=1e-12)  # csv float round trip
    assert list(old.adata.obs["array_row"]) == list(visium.adata.obs["array_row"])


@pytest.mark.parametrize("missing, named", [
    ("spatial/scalefactors_json.json", "scalefactors_json.json"),
    ("spatial/tissue_positions.csv", "tissue_positions.csv"),
    ("filtered_feature_bc_matrix.h5", "filtered_feature_bc_matrix.h5"),
])
def test_missing_file_is_named(visium_dir, tmp_path, missing, named):
    skip = (missing,) if missing != "filtered_feature_bc_matrix.h5" else (
        missing, "filtered_feature_bc_matrix")
    outs = _linked_outs(visium_dir, tmp_path / "outs", skip=skip)
    with pytest.raises(RoiScoreError, match=named):
        read_spaceranger(outs)


def test_positions_of_another_run_are_refused(visium_dir, tmp_path):
    outs = _linked_outs(visium_dir, tmp_path / "outs", skip=("spatial/tissue_positions.csv",))
    pos = pd.read_csv(visium_dir / "spatial" / "tissue_positions.csv")
    pos["barcode"] = "X" + pos["barcode"]
    pos.to_csv(outs / "spatial" / "tissue_positions.csv", index=False)
    with pytest.raises(RoiScoreError, match="have no position"):
        read_spaceranger(outs)


def test_not_a_folder(tmp_path):
    with pytest.raises(RoiScoreError, match="does not exist"):
        read_spaceranger(tmp_path / "nope")


# -- Generated fixtures: headerless positions, Visium HD ---------------------
def _small_counts(n_obs: int, n_genes: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.poisson(1.5, size=(n_obs, n_genes))
    c[:, 0] += 1  # no empty rows
    return c


def test_generated_spaceranger_with_headerless_positions(tmp_path):
    outs = tmp_path / "outs"
    (outs / "spatial").mkdir(parents=True)
    counts = _small_counts(3, 4)
    bcs = ["AAAC-1", "AAAG-1", "AAAT-1"]
    write_10x_h5(outs / "filtered_feature_bc_matrix.h5", counts, bcs,
                 [f"ENSG{i}" for i in range(4)], ["CD68", "STAB1", "PTPRC", "CD68"])
    # positions list out of order and with an extra off-tissue spot
    (outs / "spatial" / "tissue_positions_list.csv").write_text(
        "AAAT-1,1,2,4,300.0,900.0\nZZZZ-1,0,0,0,10,10\nAAAC-1,1,0,0,100.0,500.0\nAAAG-1,1,1,2,200.5,700.25\n")
    write_json(outs / "spatial" / "scalefactors_json.json",
               {"spot_diameter_fullres": 89.4, "tissue_lowres_scalef": 0.05,
                "tissue_hires_scalef": 0.17, "fiducial_diameter_fullres": 144.0})
    with pytest.warns(UserWarning, match="spot pitch"):  # 4 scattered spots are no 100 µm lattice
        s = read_spaceranger(outs)
    assert s.adata.shape == (3, 4)
    np.testing.assert_array_equal(s.xy, [[500.0, 100.0], [700.25, 200.5], [900.0, 300.0]])
    np.testing.assert_array_equal(s.counts.toarray(), counts)
    assert list(s.adata.var_names) == ["CD68", "STAB1", "PTPRC", "CD68-1"]
    assert list(s.adata.var["gene_symbols"]) == ["CD68", "STAB1", "PTPRC", "CD68"]
    # median nearest-neighbour distance of the 4 listed centres = 100 µm
    nn = sorted([np.hypot(200.25, 100.5), np.hypot(199.75, 99.5), np.hypot(199.75, 99.5), np.hypot(490, 90)])
    px = 100.0 / ((nn[1] + nn[2]) / 2)
    assert s.pixel_size_um == pytest.approx(px)
    assert s.diameter_px == pytest.approx(55.0 / px)
    assert tissue_images_from_uns(s.adata) == []  # no png written


def _write_hd_bins(folder: Path, bin_um: int = 8, um_per_px: float = 0.2737) -> tuple[np.ndarray, list[str]]:
    (folder / "spatial").mkdir(parents=True)
    bcs = [f"s_{bin_um:03d}um_{r:05d}_{c:05d}-1" for r in range(3) for c in range(2)]
    counts = _small_counts(len(bcs), 5, seed=1)
    write_10x_h5(folder / "filtered_feature_bc_matrix.h5", counts, bcs,
                 [f"ENSG{i}" for i in range(5)], ["CD68", "CD163", "STAB1", "EPCAM", "PECAM1"])
    side = bin_um / um_per_px
    rows = [{"barcode": b, "in_tissue": 1, "array_row": i // 2, "array_col": i % 2,
             "pxl_row_in_fullres": 1000 + side * (i // 2), "pxl_col_in_fullres": 2000 + side * (i % 2)}
            for i, b in enumerate(bcs)]
    rows.append({"barcode": "s_008um_09999_09999-1", "in_tissue": 0, "array_row": 99, "array_col": 99,
                 "pxl_row_in_fullres": 0.0, "pxl_col_in_fullres": 0.0})
    pd.DataFrame(rows[::-1]).to_parquet(folder / "spatial" / "tissue_positions.parquet")
    write_json(folder / "spatial" / "scalefactors_json.json",
               {"spot_diameter_fullres": side, "bin_size_um": float(bin_um),
                "microns_per_pixel": um_per_px, "tissue_lowres_scalef": 0.01,
                "tissue_hires_scalef": 0.1, "regist_target_img_scalef": 0.2,
                "fiducial_diameter_fullres": 600.0})
    return counts, bcs


def test_generated_visium_hd_bins_are_squares(tmp_path):
    outs = tmp_path / "outs"
    counts, bcs = _write_hd_bins(outs / "binned_outputs" / "square_008um")
    _write_hd_bins(outs / "binned_outputs" / "square_016um", bin_um=16)
    s = read_visium_hd(outs)  # default: 8 µm bins
    assert s.shape == "square"
    assert s.provenance["bin_size_um"] == 8
    assert s.diameter_px == pytest.approx(8 / 0.2737)
    assert s.pixel_size_um == pytest.approx(0.2737)
    assert list(s.adata.obs_names) == bcs
    np.testing.assert_array_equal(s.counts.toarray(), counts)
    np.testing.assert_allclose(s.xy[1] - s.xy[0], [8 / 0.2737, 0.0])  # neighbouring bins touch
    assert s.to_layer_kwargs()["symbol"] == "square"
    s16 = read_visium_hd(outs, bin_size_um=16)
    assert s16.diameter_px == pytest.approx(16 / 0.2737)
    direct = read_visium_hd(outs / "binned_outputs" / "square_008um")
    np.testing.assert_array_equal(direct.xy, s.xy)


def test_visium_hd_missing_parquet_and_bin_size(tmp_path):
    folder = tmp_path / "square_008um"
    _write_hd_bins(folder)
    with pytest.raises(RoiScoreError, match="square_002um"):
        read_visium_hd(tmp_path, bin_size_um=2)
    (folder / "spatial" / "tissue_positions.parquet").unlink()
    with pytest.raises(RoiScoreError, match="tissue_positions.parquet"):
        read_visium_hd(folder)
    shutil.rmtree(folder / "spatial")
    with pytest.raises(RoiScoreError, match="tissue_positions.parquet"):
        read_visium_hd(folder)


def test_scanpy_style_h5ad_of_visium_spots_gets_the_same_scale(visium, tmp_path):
    """An .h5ad keeping Space Ranger's scalefactors and array grid (as scanpy.read_visium writes
    it) is scaled by the 100 µm pitch too, not taken as 55 µm = spot_diameter_fullres."""
    from napari_roiscore.spots.table import read_h5ad_spots

    adata = visium.adata.copy()
    for lib in adata.uns["spatial"].values():
        lib["images"] = {}
    adata.write_h5ad(tmp_path / "visium.h5ad")
    s = read_h5ad_spots(tmp_path / "visium.h5ad")
    assert s.pixel_size_um == pytest.approx(visium.pixel_size_um, rel=0.01)
    assert s.diameter_px * s.pixel_size_um == pytest.approx(55.0)
    assert np.median(_row_neighbour_distances_um(s)) == pytest.approx(100.0, rel=0.02)


def test_visium_hd_without_microns_per_pixel_scales_by_the_bin_pitch(tmp_path):
    folder = tmp_path / "square_008um"
    _write_hd_bins(folder)
    sf_path = folder / "spatial" / "scalefactors_json.json"
    sf = __import__("json").loads(sf_path.read_text())
    del sf["microns_per_pixel"]
    write_json(sf_path, sf)
    s = read_visium_hd(folder)
    assert s.pixel_size_um == pytest.approx(0.2737)
    assert s.diameter_px * s.pixel_size_um == pytest.approx(8.0)


def test_visium_hd_bins_off_their_stated_size_warn(tmp_path):
    folder = tmp_path / "square_008um"
    _write_hd_bins(folder)
    sf_path = folder / "spatial" / "scalefactors_json.json"
    sf = __import__("json").loads(sf_path.read_text())
    sf["microns_per_pixel"] = 0.5  # bins would be 16 px wide, but their centres are 29 px apart
    write_json(sf_path, sf)
    with pytest.warns(UserWarning, match="neighbouring bins are"):
        read_visium_hd(folder)
