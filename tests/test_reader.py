"""npe2 reader: instrument folders and .h5ad open as layers (headless and in a viewer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_roiscore._layer_data import SPOTS_KEY
from napari_roiscore._reader import folder_kind, get_reader, read_paths
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.readers import read_spaceranger
from real_data import SHARED_DATA, real_data

GEOMX = SHARED_DATA / "geomx_ngs_example"


@pytest.fixture(scope="module")
def visium_dir() -> Path:
    return real_data("visium_cytassist_mouse")


def test_folder_kinds(visium_dir, tmp_path):
    assert folder_kind(visium_dir) == "visium"
    assert folder_kind(tmp_path) is None
    assert folder_kind(tmp_path / "missing") is None
    if GEOMX.is_dir():
        assert folder_kind(GEOMX) == "geomx"
    assert get_reader(str(tmp_path)) is None
    assert get_reader(str(tmp_path / "x.tif")) is None
    assert get_reader(str(visium_dir)) is not None


def test_visium_folder_gives_image_and_spots_in_one_frame(visium_dir):
    layers = read_paths(str(visium_dir))
    assert [kind for _, _, kind in layers] == ["image", "points"]
    (img, img_kw, _), (pts, pts_kw, _) = layers
    assert pts.shape == (2898, 2) and img_kw["rgb"]
    spots = pts_kw["metadata"][SPOTS_KEY]
    # a spot's world position divided by the image's scale = its pixel in the lowres image
    world = pts * np.asarray(pts_kw["scale"])
    pix = np.rint(world / np.asarray(img_kw["scale"])).astype(int)
    np.testing.assert_array_equal(pix, np.rint(spots.yx * 0.2).astype(int))
    assert img[pix[:, 0], pix[:, 1]].mean() < img.mean()  # spots sit on (darker) tissue


def test_h5ad_round_trip_keeps_the_tissue_image(visium_dir, tmp_path):
    spots = read_spaceranger(visium_dir)
    out = tmp_path / "visium.h5ad"
    spots.adata.write_h5ad(out)
    layers = read_paths(str(out))
    assert [kind for _, _, kind in layers] == ["image", "points"]
    np.testing.assert_allclose(layers[1][0], spots.yx)


def test_partial_folder_names_missing_file(visium_dir, tmp_path):
    import os

    outs = tmp_path / "outs"
    (outs / "spatial").mkdir(parents=True)
    os.symlink(visium_dir / "spatial" / "scalefactors_json.json", outs / "spatial" / "scalefactors_json.json")
    assert folder_kind(outs) == "visium"
    with pytest.raises(RoiScoreError, match="filtered_feature_bc_matrix.h5"):
        read_paths(str(outs))


@pytest.mark.gui
def test_viewer_opens_visium_folder(make_napari_viewer, visium_dir):
    viewer = make_napari_viewer()
    viewer.open(str(visium_dir), plugin="napari-roiscore")
    points = [ly for ly in viewer.layers if ly.__class__.__name__ == "Points"]
    images = [ly for ly in viewer.layers if ly.__class__.__name__ == "Image"]
    assert len(points) == 1 and len(points[0].data) == 2898
    assert len(images) == 1 and images[0].rgb
    # the image covers the spots in world coordinates
    lo, hi = images[0].extent.world
    world = points[0].data * points[0].scale
    assert (world >= lo).all() and (world <= hi).all()


def test_xenium_and_geomx_folders_open_as_points(tmp_path):
    from test_xenium import _write_xenium

    _write_xenium(tmp_path / "xe")
    assert folder_kind(tmp_path / "xe") == "xenium"
    layers = read_paths(str(tmp_path / "xe"))
    assert [kind for _, _, kind in layers] == ["points"]  # no morphology image in the fixture
    assert layers[0][1]["scale"] == (0.2125, 0.2125)
    if GEOMX.is_dir():
        (data, kw, kind), = read_paths(str(GEOMX))
        assert kind == "points" and len(data) == 88  # the no-template control well is left out


def test_one_file_of_a_space_ranger_output_opens_the_whole_output(visium_dir, tmp_path):
    """Dropping filtered_feature_bc_matrix.h5 or spatial/ gave napari's 'no compatible reader'."""
    whole = read_paths(str(visium_dir))
    for part in (visium_dir / "filtered_feature_bc_matrix.h5", visium_dir / "spatial",
                 visium_dir / "spatial" / "scalefactors_json.json"):
        if not part.exists():
            continue
        reader = get_reader(str(part))
        assert reader is not None, part
        layers = reader(str(part))
        assert [k for _, _, k in layers] == [k for _, _, k in whole]
        assert len(layers[-1][0]) == len(whole[-1][0])
    stray = tmp_path / "other.h5"
    stray.write_bytes(b"\x89HDF\r\n\x1a\n")
    assert get_reader(str(stray)) is None  # an .h5 that is no part of an output is left to others
