"""Folders of one TIFF per marker, and multi-page TIFFs whose pages name their marker."""

from __future__ import annotations

import json
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import tifffile

from napari_roiscore._reader import get_reader, read_paths
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.multiplex import read_multiplex_tiff
from napari_roiscore.readers.channel_folder import is_channel_folder, read_channel_folder
from napari_roiscore.readers.dispatch import image_kind, read_image

MIBI = "mibi_breast_risom2022"
FIELD_NESTS = "Point2206_pt1116_31620"


def _write_folder(folder: Path, names: list[str], shape=(60, 80), resolution=None) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    stack = rng.poisson(0.4, (len(names), *shape)).astype(np.uint8)
    for name, plane in zip(names, stack):
        kw = {"resolution": resolution, "resolutionunit": "CENTIMETER"} if resolution else {}
        tifffile.imwrite(folder / f"{name}.tif", plane, **kw)
    return stack


def test_real_mibi_field_opens_lazily_with_the_four_roles(shared_data):
    folder = shared_data / MIBI / FIELD_NESTS
    assert image_kind(folder) == "channel_folder"
    image = read_channel_folder(folder)
    assert image.n_channels == 41 and image.shape_yx == (1024, 1024)
    assert isinstance(image.levels[0], da.Array)
    assert image.pixel_size_um is None and image.provenance["pixel_size_source"] == "unknown"
    chosen = {role: name for name, role in zip(image.channel_names, image.roles) if role != "other"}
    assert chosen == {"nuclei": "Nuc", "cancer cells": "PanKRT", "vessels": "CD31", "macrophages": "CD68"}
    # pixels are the files' own
    c = image.channel_names.index("CD31")
    np.testing.assert_array_equal(np.asarray(image.levels[0][c]), tifffile.imread(folder / "CD31.tif"))


def test_folder_channels_sorted_by_name_with_pixels_and_given_pixel_size(tmp_path):
    stack = _write_folder(tmp_path / "fov", ["PanKRT", "CD31", "Nuc", "cd68"])
    image = read_channel_folder(tmp_path / "fov", pixel_size_um=0.39)
    assert image.channel_names == ["CD31", "cd68", "Nuc", "PanKRT"]
    order = [1, 3, 2, 0]
    np.testing.assert_array_equal(np.asarray(image.levels[0]), stack[order])
    assert image.pixel_size_um == pytest.approx(0.39)
    assert image.provenance["reader_options"] == {"pixel_size_um": pytest.approx(0.39)}
    assert read_image(tmp_path / "fov", pixel_size_um=0.39).channel_names == image.channel_names


def test_pixel_size_from_resolution_tags(tmp_path):
    # 20,000 pixels per cm = 0.5 µm per pixel (as MIBItiff writes it)
    _write_folder(tmp_path / "fov", ["DNA1", "CD31"], resolution=(20000, 20000))
    image = read_channel_folder(tmp_path / "fov")
    assert image.pixel_size_um == pytest.approx(0.5)
    assert image.provenance["pixel_size_source"] == "files"


def test_multi_page_file_in_a_folder_and_on_its_own(tmp_path):
    rng = np.random.default_rng(1)
    planes = rng.integers(0, 9, (3, 32, 48), dtype=np.uint8)
    named = tmp_path / "panel.tif"
    with tifffile.TiffWriter(named) as tw:  # MIBItiff-style JSON descriptions
        for plane, name in zip(planes, ["HH3", "ECAD", "CD163"]):
            tw.write(plane, description=json.dumps({"channel.target": name, "channel.mass": 100}), metadata=None)
    one = read_multiplex_tiff(named)
    assert one.channel_names == ["HH3", "ECAD", "CD163"]
    assert one.roles == ["nuclei", "cancer cells", "macrophages"]
    np.testing.assert_array_equal(np.asarray(one.levels[0]), planes)
    # pages written one by one with PageName tags (several 2-D series in tifffile)
    paged = tmp_path / "paged.tif"
    with tifffile.TiffWriter(paged) as tw:
        for plane, name in zip(planes, ["DAPI", "panCK", "CD31"]):
            tw.write(plane, extratags=[(285, "s", 0, name, True)])
    two = read_multiplex_tiff(paged)
    assert two.channel_names == ["DAPI", "panCK", "CD31"]
    np.testing.assert_array_equal(np.asarray(two.levels[0]), planes)
    # a folder holding a multi-page file and a single-plane file
    fov = tmp_path / "fov"
    fov.mkdir()
    named.rename(fov / "panel.tif")
    tifffile.imwrite(fov / "CD31.tif", planes[0])
    folder = read_channel_folder(fov)
    assert folder.channel_names == ["CD31", "HH3", "ECAD", "CD163"]


def test_bad_folders_name_the_problem(tmp_path):
    with pytest.raises(RoiScoreError, match="does not exist"):
        read_channel_folder(tmp_path / "nope")
    (tmp_path / "one").mkdir()
    tifffile.imwrite(tmp_path / "one" / "CD31.tif", np.zeros((8, 8), np.uint8))
    assert not is_channel_folder(tmp_path / "one")
    with pytest.raises(RoiScoreError, match="1 TIFF file"):
        read_channel_folder(tmp_path / "one")
    _write_folder(tmp_path / "mixed", ["Nuc", "PanKRT"])
    tifffile.imwrite(tmp_path / "mixed" / "CD31.tif", np.zeros((10, 10), np.uint8))
    with pytest.raises(RoiScoreError, match="same size"):
        read_channel_folder(tmp_path / "mixed")
    _write_folder(tmp_path / "ok", ["Nuc", "PanKRT"])
    (tmp_path / "ok" / "notes.tif").write_text("not a tiff")  # ignored: not a TIFF inside
    assert read_channel_folder(tmp_path / "ok").channel_names == ["Nuc", "PanKRT"]
    for bad in (0, -1, float("nan"), "abc"):
        with pytest.raises(RoiScoreError, match="Pixel size"):
            read_channel_folder(tmp_path / "ok", pixel_size_um=bad)
    with pytest.raises(RoiScoreError, match="unknown reader option"):
        read_image(tmp_path / "ok", channels=["Nuc"])


def test_napari_reader_opens_the_folder_roles_visible_others_hidden(tmp_path):
    _write_folder(tmp_path / "fov", ["CD3", "CD31", "CD68", "ECAD", "HH3", "Nuc", "PanKRT", "VIM"])
    assert get_reader(str(tmp_path / "fov")) is not None
    layers = read_paths(str(tmp_path / "fov"))  # no viewer: no dialog, pixel size unknown
    shown = {kw["name"] for _, kw, kind in layers if kw["visible"]}
    assert shown == {"CD31 (vessels)", "CD68 (macrophages)", "Nuc (nuclei)", "PanKRT (cancer cells)"}
    hidden = [kw for _, kw, _ in layers if not kw["visible"]]
    assert {kw["colormap"] for kw in hidden} == {"gray"} and len(hidden) == 4
    # sparse counts get a display range from their data, not 0..255
    assert all(1 <= kw["contrast_limits"][1] < 20 for _, kw, _ in layers)


def test_session_keeps_the_given_pixel_size(tmp_path, sample_paths):
    from napari_roiscore.rois.roi import Roi
    from napari_roiscore.scoring.signature import Signature
    from napari_roiscore.session import load_session, make_session
    from shapely.geometry import box

    _write_folder(tmp_path / "fov", ["Nuc", "PanKRT", "CD31"])
    image = read_image(tmp_path / "fov", pixel_size_um=0.8)
    session = make_session(spots=sample_paths["spots"], rois=[Roi("T1", "tumour", box(0, 0, 10, 10))],
                           signature=Signature("macrophage", ["CD68"]), image=image)
    path = session.save(tmp_path / "s.roiscore.json")
    again = load_session(path)
    assert again.image.options == {"pixel_size_um": pytest.approx(0.8)}
    assert read_image(again.image.path, **again.image.options).pixel_size_um == pytest.approx(0.8)
