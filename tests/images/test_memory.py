"""Memory: huge images stay lazy (RSS measured with psutil in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from bad_files import huge_tiff_header, write_sparse_pyramid

pytestmark = pytest.mark.slow

MB = 1024**2
#: generous bound on RSS growth; reading the 40k level 0 of 2 channels would need 3.2 GB
MAX_GROWTH_MB = 500

SCRIPT = textwrap.dedent("""
    import json, sys, psutil
    import dask.array, tifffile, zarr  # imported up front: only the data should count
    import numpy as np
    from napari_roiscore.images.multiplex import read_multiplex_tiff
    from napari_roiscore._layer_data import image_layers
    from napari_roiscore.errors import RoiScoreError
    proc = psutil.Process()
    base = proc.memory_info().rss
    out = {}
    try:
        read_multiplex_tiff(sys.argv[2])
        out["huge"] = "accepted"
    except RoiScoreError as err:
        out["huge"] = str(err)
    out["after_huge_mb"] = (proc.memory_info().rss - base) / 2**20
    img = read_multiplex_tiff(sys.argv[1])
    layers = image_layers(img)
    out["shape"] = list(img.shape_yx)
    out["levels"] = len(img.levels)
    # what napari does when drawing: a few tiles of level 0, a region of the coarsest level
    tile = np.asarray(img.levels[0][0, 20000:20512, 30000:30512])
    overview = np.asarray(img.levels[-1][:, :1024, :1024])
    out["n_layers"] = len(layers)
    out["tile_sum"] = int(tile.sum()) + int(overview.sum())
    out["growth_mb"] = (proc.memory_info().rss - base) / 2**20
    print(json.dumps(out))
""")


def test_huge_and_40k_images_stay_lazy(tmp_path):
    big = write_sparse_pyramid(tmp_path / "big.ome.tif", size=40_000)
    huge = huge_tiff_header(tmp_path / "huge.tif")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(big), str(huge)], capture_output=True, text=True,
                         timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"RSS growth: huge header {out['after_huge_mb']:.1f} MB; 40k pyramid open + tiles "
          f"{out['growth_mb']:.1f} MB (bound {MAX_GROWTH_MB} MB)")
    assert "declares" in out["huge"] and "Fix:" in out["huge"]
    assert out["after_huge_mb"] < 20
    assert out["shape"] == [40_000, 40_000] and out["levels"] == 4 and out["n_layers"] == 2
    assert out["tile_sum"] == 0
    assert out["growth_mb"] < MAX_GROWTH_MB
