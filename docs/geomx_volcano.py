"""Regenerate docs/geomx_volcano.png: DE of two cell lines in the real GeoMx NGS example.

Run from the repository root: ``PYTHONPATH=src python docs/geomx_volcano.py``
(needs ../shared/data/geomx_ngs_example).
"""

from pathlib import Path

from napari_roiscore.analysis.differential import differential_expression
from napari_roiscore.analysis.pseudobulk_samples import aoi_samples
from napari_roiscore.analysis.volcano import write_volcano
from napari_roiscore.readers.geomx import read_geomx_ngs

root = Path(__file__).resolve().parents[1]
samples = aoi_samples(read_geomx_ngs(root / ".." / "shared" / "data" / "geomx_ngs_example"))
result = differential_expression(samples, "cell_line", "HS578T", "HEL", unit="slide")
print(result.table.head(10).to_string(index=False))
write_volcano(result, root / "docs" / "geomx_volcano.png")
