"""Small helpers shared by the GUI tests (tests/_qt)."""

from __future__ import annotations


def scores_ready(widget) -> bool:
    """True once the ROI scores widget shows a score (or a final status) for every ROI."""
    t = widget.last_table
    return not t.empty and not t["status"].eq("computing…").any()


# -- differential expression in the dock (tests/_qt/test_de_panel.py, test_de_signature.py) --------------

#: genes raised 30x (+200) in the tumour spots of :func:`planted_slide`
PLANTED = ["G0007", "G0023", "G0041"]


def planted_slide():
    """One slide, 3 tumour and 3 stroma ROIs; tumour spots carry 30x (+200) the counts of :data:`PLANTED`."""
    import numpy as np
    import scipy.sparse as sp
    import shapely

    from napari_roiscore.analysis.pseudobulk_samples import SlideRois
    from napari_roiscore.analysis.synthetic_cohort import synthetic_cohort
    from napari_roiscore.spots.table import SpotTable

    slide = synthetic_cohort(1, n_genes=60, n_planted=0, rois_per_class=3, spots_per_roi=16, seed=5).slides[0]
    adata = slide.spots.adata.copy()
    X = adata.X.toarray()
    x, y = slide.spots.xy.T
    tumour = np.zeros(len(X), bool)
    for roi in slide.rois:
        if roi.roi_class == "tumour":
            tumour |= shapely.contains_xy(roi.geometry, x, y)
    cols = [adata.var_names.get_loc(g) for g in PLANTED]
    X[np.ix_(tumour, cols)] = X[np.ix_(tumour, cols)] * 30 + 200
    adata.X = sp.csr_matrix(X.astype(np.float32))
    spots = SpotTable(adata=adata, diameter_px=slide.spots.diameter_px, provenance={"reader": "test"})
    return SlideRois(slide.slide, spots, slide.rois)


def multi_slide(n_slides: int = 4, seed: int = 11):
    """Sections of ``n_slides`` synthetic patients side by side in ONE spots table (obs ``slide``), as
    concatenated Visium sections or a GeoMx run; 2 tumour and 2 stroma ROIs on each.

    Returns
    -------
    tuple of (SlideRois, list of SlideRois)
        The combined table (``slide`` "all"; ROIs named "<patient> <roi>") and the separate slides.
    """
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    import shapely.affinity

    from napari_roiscore.analysis.pseudobulk_samples import SlideRois
    from napari_roiscore.analysis.synthetic_cohort import synthetic_cohort
    from napari_roiscore.rois.roi import Roi
    from napari_roiscore.spots.table import SpotTable

    cohort = synthetic_cohort(n_slides, n_genes=60, n_planted=0, rois_per_class=2, spots_per_roi=16, seed=seed)
    blocks, xy, slide_names, rois = [], [], [], []
    shift = 0.0
    for s in cohort.slides:
        pos = s.spots.xy + [shift, 0.0]
        blocks.append(s.spots.adata.X.toarray())
        xy.append(pos)
        slide_names += [s.slide] * len(pos)
        rois += [Roi(f"{s.attributes['patient']} {r.name}", r.roi_class,
                     shapely.affinity.translate(r.geometry, shift, 0.0)) for r in s.rois]
        shift = float(pos[:, 0].max()) + 500.0
    first = cohort.slides[0].spots
    adata = ad.AnnData(X=sp.csr_matrix(np.vstack(blocks)),
                       obs=pd.DataFrame({"slide": slide_names},
                                        index=[f"spot{i}" for i in range(len(slide_names))]),
                       var=first.adata.var.copy())
    adata.obsm["spatial"] = np.vstack(xy)
    adata.uns["spatial"] = {"all": {"scalefactors": {"spot_diameter_fullres": first.diameter_px}}}
    spots = SpotTable(adata=adata, diameter_px=first.diameter_px, provenance={"reader": "test"})
    return SlideRois("all", spots, rois), cohort.slides


def open_de_dock(make_napari_viewer, qtbot, slide):
    """A real viewer with ``slide``'s spots and ROIs and the ROI scores dock, scores shown."""
    from napari.layers import Layer

    from napari_roiscore._layer_data import roi_layer, spots_layer

    viewer = make_napari_viewer()
    viewer.add_layer(Layer.create(*spots_layer(slide.spots)))
    viewer.add_layer(Layer.create(*roi_layer(slide.rois)))
    _, widget = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: widget.state.scorer is not None
                    and len(widget.state.current_rois()) == len(slide.rois), timeout=30_000)
    return viewer, widget


def run_de(qtbot, panel) -> None:
    """Click Run in the Discover tab; the dock stays responsive while it computes; wait for the end."""
    panel.run_button.native.click()
    assert panel.running and panel.busy.isVisibleTo(panel) and not panel.run_button.enabled  # not blocking
    qtbot.waitUntil(lambda: not panel.running, timeout=180_000)
    assert not panel.busy.isVisibleTo(panel) and panel.run_button.enabled


# -- opening files as the user does (tests/_qt/test_background_open.py) ----------------------------------

def open_from_window(viewer, path, plugin: str = "napari-roiscore"):
    """``viewer.open(path)`` called from inside the running Qt event loop, as napari's
    File ▸ Open and drag and drop call it; returns what ``viewer.open`` returned."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop, out = QEventLoop(), {}

    def go() -> None:
        try:
            out["layers"] = viewer.open(str(path), plugin=plugin)
        except Exception as err:  # noqa: BLE001 - handed to the test
            out["error"] = err
        finally:
            loop.quit()

    QTimer.singleShot(0, go)
    loop.exec()
    if "error" in out:
        raise out["error"]
    return out["layers"]


def large_h5ad(tmp_path):
    """An .h5ad with more spots than one Points layer draws (raster + markers)."""
    import anndata as ad
    import numpy as np
    import scipy.sparse as sp

    from napari_roiscore.spots.view import POINTS_LAYER_LIMIT

    rng = np.random.default_rng(4)
    n = POINTS_LAYER_LIMIT + 2000
    a = ad.AnnData(sp.random(n, 6, density=0.3, format="csr", random_state=4, dtype=np.float32) * 20)
    a.X.data = np.round(a.X.data)
    a.var_names = ["CD68", "CD163", "STAB1", "MRC1", "EPCAM", "KRT8"]
    a.obs_names = [f"c{i}" for i in range(n)]
    a.obsm["spatial"] = rng.uniform(0, 20_000, (n, 2))
    a.uns["spatial"] = {"lib": {"scalefactors": {"spot_diameter_fullres": 10.0}}}
    a.uns["roiscore"] = {"pixel_size_um": 0.5}
    path = tmp_path / "cells.h5ad"
    a.write_h5ad(path)
    return path
