"""Regenerate the synthetic sample slide in this folder (seeded, reproducible).

    python sample_images/make_sample.py

Writes ``sample_slide.ome.tif`` (4-channel DAPI/panCK/CD31/CD68 pyramid,
4096 x 4096 px at 1 µm/px, 4 levels), ``sample_spots.h5ad`` (Visium-like
spots, 55 µm diameter, 100 µm pitch, 2,000 genes, raw counts) and
``sample_rois.geojson`` (tumour ROI "004" and stroma ROI "007").
The data are SYNTHETIC: see napari_roiscore/synthetic.py for the model.
"""

from __future__ import annotations

import sys
from pathlib import Path

from napari_roiscore.synthetic import make_slide, write_slide

SEED = 7

if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    slide = make_slide(size=4096, pixel_size_um=1.0, n_genes=2000, seed=SEED)
    paths = write_slide(slide, out, stem="sample")
    for kind, p in paths.items():
        print(f"{kind:6s} {p}  {p.stat().st_size / 1e6:.2f} MB")
