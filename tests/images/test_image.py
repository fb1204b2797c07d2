"""Multiplex images: OME-TIFF, QPTIFF and plain multi-page TIFF, opened lazily."""

from __future__ import annotations

import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_roiscore._layer_data import image_layers
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.multiplex import MultiplexImage, read_multiplex_tiff

# -- fixtures: minimal files in the instruments' real layouts ---------------------------

#: (filter / fluorophore <Name>, <Biomarker>) per page, as a PhenoImager HT writes them
QPTIFF_CHANNELS = [("DAPI", "DAPI"), ("Opal 520", "PanCK"), ("Opal 570", "CD31"), ("Opal 690", "CD68")]


def qptiff_description(name: str, biomarker: str | None, image_type: str, pixel_um: float | None) -> str:
    """Per-page ImageDescription XML of an Akoya/PerkinElmer QPTIFF."""
    bio = f"<Biomarker>{biomarker}</Biomarker>\n" if biomarker else ""
    profile = (f"<ScanProfile><root><ScanResolution><PixelSizeMicrons>{pixel_um}</PixelSizeMicrons>"
               "</ScanResolution><Objective>20x</Objective></root></ScanProfile>\n") if pixel_um else ""
    return (
        '<?xml version="1.0" encoding="utf-16"?>\n'
        "<PerkinElmer-QPI-ImageDescription>\n"
        "<DescriptionVersion>2</DescriptionVersion>\n"
        "<AcquisitionSoftware>PhenoImagerHT</AcquisitionSoftware>\n"
        f"<ImageType>{image_type}</ImageType>\n"
        "<Identifier>test-slide</Identifier>\n"
        "<IsUnmixedComponent>True</IsUnmixedComponent>\n"
        "<ExposureTime>1000</ExposureTime>\n"
        f"<Name>{name}</Name>\n{bio}"
        "<Color>0,0,255</Color>\n"
        "<Objective>20x</Objective>\n"
        f"{profile}"
        "</PerkinElmer-QPI-ImageDescription>"
    )


def write_qptiff(path: Path, planes: np.ndarray, pixel_um: float = 0.4977, biomarkers: bool = True,
                 scan_profile: bool = True) -> Path:
    """A QPTIFF as the Akoya scanners lay it out.

    Full-resolution pages (one per channel, tiled), an RGB thumbnail, then one
    reduced-resolution page per channel per level; resolution tags in pixels/cm.
    """
    res = (1e4 / pixel_um, 1e4 / pixel_um)
    common = {"software": "PerkinElmer-QPI", "metadata": None, "resolution": res, "resolutionunit": "CENTIMETER"}
    with tifffile.TiffWriter(path) as tw:
        for (name, bio), plane in zip(QPTIFF_CHANNELS, planes):
            tw.write(plane, tile=(64, 64), description=qptiff_description(
                name, bio if biomarkers else None, "FullResolution", pixel_um if scan_profile else None), **common)
        thumb = np.zeros((32, 32, 3), np.uint8)
        tw.write(thumb, photometric="rgb", description=qptiff_description("", None, "Thumbnail", None), **common)
        level = planes
        for _ in range(2):
            level = level[:, ::2, ::2]
            for (name, bio), plane in zip(QPTIFF_CHANNELS, level):
                tw.write(np.ascontiguousarray(plane), tile=(64, 64), subfiletype=1, description=qptiff_description(
                    name, bio if biomarkers else None, "ReducedResolution", None), **common)
    return path


def planes(n_c: int = 4, size: int = 256) -> np.ndarray:
    """Distinct content per channel: channel c is bright in the c-th quarter of columns."""
    img = np.zeros((n_c, size, size), np.uint16)
    for c in range(n_c):
        img[c, :, c * size // n_c:(c + 1) * size // n_c] = 1000 * (c + 1)
    img[:, 10, 20] = 7  # a marker pixel at (row 10, col 20)
    return img


# -- QPTIFF ------------------------------------------------------------------------------

def test_qptiff_channels_roles_pixel_size_and_pyramid(tmp_path):
    data = planes()
    img = read_multiplex_tiff(write_qptiff(tmp_path / "slide.qptiff", data))
    assert img.provenance["format"] == "qptiff"
    assert img.channel_names == ["DAPI", "PanCK", "CD31", "CD68"]
    assert img.roles == ["nuclei", "cancer cells", "vessels", "macrophages"]
    assert img.pixel_size_um == pytest.approx(0.4977)
    # pyramid: full, 1/2, 1/4 — the RGB thumbnail is not a level
    assert [lvl.shape for lvl in img.levels] == [(4, 256, 256), (4, 128, 128), (4, 64, 64)]
    for c in range(4):
        np.testing.assert_array_equal(np.asarray(img.levels[0][c]), data[c])
    np.testing.assert_array_equal(np.asarray(img.levels[1][2]), data[2, ::2, ::2])


def test_qptiff_without_biomarker_uses_name_and_resolution_tags(tmp_path):
    img = read_multiplex_tiff(write_qptiff(tmp_path / "old.qptiff", planes(), pixel_um=0.5,
                                           biomarkers=False, scan_profile=False))
    assert img.channel_names == ["DAPI", "Opal 520", "Opal 570", "Opal 690"]
    assert img.roles[0] == "nuclei" and img.roles[1:] == ["other"] * 3
    assert img.pixel_size_um == pytest.approx(0.5)  # 20,000 pixels per cm


# -- plain multi-page TIFF ---------------------------------------------------------------

def test_plain_multipage_tiff_pages_are_channels(tmp_path):
    data = planes(3, 96)
    path = tmp_path / "plain.tif"
    with tifffile.TiffWriter(path) as tw:
        for plane in data:
            tw.write(plane, metadata=None, resolution=(1e4 / 0.65, 1e4 / 0.65), resolutionunit="CENTIMETER")
    img = read_multiplex_tiff(path)
    assert img.provenance["format"] == "tiff"
    assert img.channel_names == ["channel 0", "channel 1", "channel 2"]
    assert img.pixel_size_um == pytest.approx(0.65)
    assert len(img.levels) == 1 and img.levels[0].shape == (3, 96, 96)
    np.testing.assert_array_equal(np.asarray(img.levels[0]), data)


def test_plain_tiff_in_inches_has_no_pixel_size(tmp_path):
    path = tmp_path / "dpi.tif"
    with tifffile.TiffWriter(path) as tw:
        for plane in planes(2, 32):
            tw.write(plane, metadata=None, resolution=(72, 72), resolutionunit="INCH")
    assert read_multiplex_tiff(path).pixel_size_um is None


def test_imagej_hyperstack_in_microns(tmp_path):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, planes(3, 40), imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"axes": "CYX", "unit": "um", "Labels": ["DAPI", "CD68", "x"]})
    img = read_multiplex_tiff(path)
    assert img.channel_names == ["DAPI", "CD68", "x"]
    assert img.roles == ["nuclei", "macrophages", "other"]
    assert img.pixel_size_um == pytest.approx(0.25)


def test_single_page_grey_tiff_is_one_channel(tmp_path):
    path = tmp_path / "one.tif"
    tifffile.imwrite(path, planes(1, 50)[0], metadata=None)
    img = read_multiplex_tiff(path)
    assert img.channel_names == ["channel 0"] and img.levels[0].shape == (1, 50, 50)


def test_rgb_tiff_channels_are_red_green_blue(tmp_path):
    path = tmp_path / "he.tif"
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[..., 1] = 200
    tifffile.imwrite(path, rgb, photometric="rgb")
    img = read_multiplex_tiff(path)
    assert img.channel_names == ["red", "green", "blue"]
    assert img.levels[0].shape == (3, 30, 40)
    assert int(np.asarray(img.levels[0][1]).max()) == 200


# -- OME-TIFF ---------------------------------------------------------------------------

def test_ome_pyramid_channels_in_layers(tmp_path):
    data = planes()
    path = tmp_path / "slide.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(data, tile=(64, 64), subifds=1, metadata={
            "axes": "CYX", "Channel": {"Name": ["Hoechst 33342", "EPCAM", "PECAM1", "CD163"]},
            "PhysicalSizeX": 325.0, "PhysicalSizeXUnit": "nm", "PhysicalSizeY": 325.0, "PhysicalSizeYUnit": "nm"})
        tw.write(np.ascontiguousarray(data[:, ::2, ::2]), tile=(64, 64), subfiletype=1)
    img = read_multiplex_tiff(path)
    assert img.provenance["format"] == "ome"
    assert img.roles == ["nuclei", "cancer cells", "vessels", "macrophages"]
    assert img.pixel_size_um == pytest.approx(0.325)
    layers = image_layers(img)
    assert [kw["colormap"] for _, kw, _ in layers] == ["blue", "cyan", "yellow", "magenta"]
    assert all(kw["multiscale"] and kw["scale"] == (0.325, 0.325) for _, kw, _ in layers)
    assert [d[0].shape for d, _, _ in layers] == [(256, 256)] * 4


# -- laziness ---------------------------------------------------------------------------

def _tile_templates(tile: int, n: int = 8) -> list[bytes]:
    """A few zlib-compressed tiles of bright discs (cells), reused across the slide."""
    out = []
    for seed in range(n):
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[:tile, :tile]
        t = np.zeros((tile, tile), np.uint16)
        for _ in range(12):
            cy, cx = rng.integers(0, tile, 2)
            t[(yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(40, 300)] = rng.integers(500, 4000)
        out.append(zlib.compress(t.tobytes(), 1))
    return out


def write_large_ome_pyramid(path: Path, size: int = 8192, tile: int = 256) -> Path:
    """An 8k x 8k tiled pyramidal OME-TIFF written tile by tile (never held in memory)."""
    templates = _tile_templates(tile)

    def tiles(n: int):
        nt = -(-n // tile)
        for ty in range(nt):
            for tx in range(nt):
                yield templates[(ty * 31 + tx * 17) % len(templates)]

    sizes = [size >> k for k in range(6)]
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(tiles(size), shape=(1, size, size), dtype=np.uint16, tile=(tile, tile), compression="zlib",
                 subifds=len(sizes) - 1, metadata={"axes": "CYX", "Channel": {"Name": ["DAPI"]},
                                                   "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
        for n in sizes[1:]:
            tw.write(tiles(n), shape=(1, n, n), dtype=np.uint16, tile=(tile, tile), compression="zlib",
                     subfiletype=1, metadata=None)
    return path


def _bytes_read() -> int:
    """Bytes this process has read through read() system calls (Linux)."""
    text = Path("/proc/self/io").read_text()
    return int(dict(line.split(": ") for line in text.splitlines())["rchar"])


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io to count bytes read")
def test_opening_and_reading_one_tile_of_8k_pyramid_stays_lazy(tmp_path):
    path = write_large_ome_pyramid(tmp_path / "big.ome.tif")
    with tifffile.TiffFile(path) as tif:
        level0_stored = sum(tif.pages[0].databytecounts)
        n_tiles = len(tif.pages[0].databytecounts)
    assert n_tiles == 1024
    # warm up imports (dask's scheduler, codecs) so only the image's own reads are counted
    warm = read_multiplex_tiff(path)
    np.asarray(warm.levels[-1][0, :8, :8])

    before = _bytes_read()
    tracemalloc.start()
    try:
        img = read_multiplex_tiff(path)
        tile = np.asarray(img.levels[0][0, 4096:4352, 4096:4352])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    read = _bytes_read() - before

    assert img.levels[0].shape == (1, 8192, 8192) and len(img.levels) == 6
    assert tile.shape == (256, 256) and tile.max() > 0
    decoded_level0 = 8192 * 8192 * 2  # 128 MiB: what an eager read would hold
    assert peak < decoded_level0 / 16, f"peak traced memory {peak / 1e6:.1f} MB"
    # the file headers (tile offsets) plus a tile or two — not the level
    assert read < level0_stored / 10, f"read {read} of {level0_stored} stored level-0 bytes"


# -- npe2 reader ---------------------------------------------------------------------------

def test_reader_claims_tiff_images_only(tmp_path):
    from napari_roiscore._reader import get_reader, read_paths

    qp = write_qptiff(tmp_path / "slide.qptiff", planes())
    ome = tmp_path / "x.ome.tiff"
    tifffile.imwrite(ome, planes(2, 32), ome=True, metadata={"axes": "CYX", "Channel": {"Name": ["DAPI", "CD31"]}})
    not_tiff = tmp_path / "notes.tif"
    not_tiff.write_text("not an image")
    assert get_reader(str(qp)) is not None and get_reader([str(qp), str(ome)]) is not None
    assert get_reader(str(not_tiff)) is None
    assert get_reader(str(tmp_path / "missing.tif")) is None
    layers = read_paths([str(qp), str(ome)])
    assert [kind for _, _, kind in layers] == ["image"] * 6
    assert [kw["name"] for _, kw, _ in layers][-2:] == ["DAPI (nuclei)", "CD31 (vessels)"]
    assert all(kw["metadata"]["roiscore_image"].provenance["path"] in (str(qp), str(ome)) for _, kw, _ in layers)


# -- errors ------------------------------------------------------------------------------

def test_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(RoiScoreError, match="nothere.tif"):
        read_multiplex_tiff(tmp_path / "nothere.tif")
    bad = tmp_path / "broken.qptiff"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(RoiScoreError, match="broken.qptiff"):
        read_multiplex_tiff(bad)


def test_set_role_changes_colour_and_rejects_unknown():
    img = MultiplexImage(levels=[np.zeros((2, 4, 4), np.uint16)], channel_names=["DAPI", "FOXP3"])
    assert img.roles == ["nuclei", "other"]
    img.set_role("FOXP3", "macrophages")
    assert img.colormap(1) == "magenta"
    with pytest.raises(RoiScoreError, match="colour|role"):
        img.set_role(0, "tumour")
    with pytest.raises(RoiScoreError, match="CD3"):
        img.set_role("CD3", "vessels")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_second_ome_image_does_not_add_channel_names(tmp_path):
    """A label/macro picture stored as a second OME Image has channels of its own:
    only the first Image (the series read) names the channels."""
    d = np.random.default_rng(0).integers(0, 255, (3, 64, 64), dtype=np.uint8)
    path = tmp_path / "two_series.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as t:
        t.write(d, metadata={"axes": "CYX", "Channel": {"Name": ["DAPI", "panCK", "CD68"]},
                             "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
        t.write(np.zeros((16, 16, 3), np.uint8), photometric="rgb",
                metadata={"axes": "YXS", "Name": "label", "PhysicalSizeX": 9.0})
    im = read_multiplex_tiff(path)
    assert im.channel_names == ["DAPI", "panCK", "CD68"]
    assert im.pixel_size_um == 0.5 and im.shape_yx == (64, 64)
