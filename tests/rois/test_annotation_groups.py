"""GeoMx AOIs grouped by annotation values become ROIs the Compare tab can use."""

from __future__ import annotations

import numpy as np
import pytest

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.readers.geomx import read_geomx_ngs
from napari_roiscore.rois.annotation_groups import annotation_columns, has_real_coordinates, rois_from_annotation
from napari_roiscore.scoring.scorer import RoiScorer
from napari_roiscore.scoring.methods import score_spots
from napari_roiscore.scoring.signature import Signature
from test_scoring import make_spots, random_counts


def test_each_aoi_is_one_roi_holding_only_its_spot():
    xy = np.array([[0, 0], [100, 0], [200, 0], [300, 0]], float)
    spots = make_spots(random_counts(4, 10, 0.5, seed=1), xy=xy)
    spots.adata.obs["segment"] = ["Tumor", "stroma", "tumor", "Stroma"]
    rois = rois_from_annotation(spots, "segment")
    assert [r.roi_class for r in rois] == ["tumour", "stroma", "tumour", "stroma"]
    scorer = RoiScorer(spots)
    assert [list(scorer.members(r)) for r in rois] == [[0], [1], [2], [3]]
    with pytest.raises(RoiScoreError, match="No annotation column 'nope'"):
        rois_from_annotation(spots, "nope")


def test_real_geomx_groups(shared_data):
    spots = read_geomx_ngs(shared_data / "geomx_ngs_example")
    assert not has_real_coordinates(spots)
    cols = annotation_columns(spots)
    assert "cell_line" in cols and "in_tissue" not in cols
    rois = rois_from_annotation(spots, "cell_line")
    assert len(rois) == spots.n_spots and len({r.name for r in rois}) == len(rois)
    sig = Signature("s", up=tuple(spots.gene_names[:5]))
    table = RoiScorer(spots).table(rois, score_spots(spots, sig, "mean_z"))
    assert (table["spots"] == 1).all()
    assert set(table["class"]) == {v.lower() for v in spots.adata.obs["cell_line"].astype(str)}
