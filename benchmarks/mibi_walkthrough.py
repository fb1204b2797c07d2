"""Real-tissue walkthrough: a MIBI-TOF breast-cancer field, simulated spots, compartments, scores.

    PYTHONPATH=src python benchmarks/mibi_walkthrough.py [--field Point2206_pt1116_31620]
        [--pixel-size 0.5] [--out docs] [--no-screenshot]

1. Opens one real field (a folder of 41 single-channel TIFFs of ion counts) as a
   lazy multiplex image; roles are guessed from the marker names.
2. Proposes tumour and stroma compartments (count rules: tissue from total
   ions, tumour from the smoothed PanKRT channel).
3. Places Visium-like spots (55 µm discs, 100 µm hexagonal pitch) on the field
   and simulates their counts with the sample generator's expression model,
   driven by what the real image shows under each spot: the PanKRT+, CD31+
   and CD68+ fractions of its footprint (smoothed-Otsu marker masks).  The
   expression is simulated; the tissue is real.
4. Scores an example macrophage panel and an epithelial panel per compartment.
5. Writes ``<out>/mibi_walkthrough.png`` (napari screenshot: four stains,
   compartments, spots, and the data attribution) and
   ``<out>/mibi_walkthrough_scores.csv``, and prints the time to open the
   field and to propose compartments, against the time to read the raw TIFFs
   eagerly as a baseline measured in the same run.

Skips (exit code 0, with a message) when ../shared/data/mibi_breast_risom2022 is absent.
The pixel size is not in the files (PROVENANCE.md: roughly 0.4-0.8 µm/px); 0.5 is assumed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mibi_breast_risom2022"
ATTRIBUTION = ("MIBI-TOF data: Risom T. et al., Cell 185 (2022) 299-310, doi:10.1016/j.cell.2021.12.023 "
               "(Mendeley Data doi:10.17632/d87vg86zd8.3), redistributed in the simpleSeg example data.")
SIGNATURES = {
    "macrophage panel (example)": ["CD68", "CD163", "STAB1", "MRC1", "MSR1"],
    "epithelial panel": ["EPCAM", "KRT8", "KRT18", "KRT19", "CDH1"],
}


def simulated_spots(image, pixel_size_um: float, seed: int = 7):
    """Visium-like spots on ``image`` with counts following its stains (see module docstring)."""
    import anndata as ad
    import pandas as pd

    from napari_roiscore.images.markers import marker_mask
    from napari_roiscore.images.spot_footprints import footprint_fractions
    from napari_roiscore.spots.synthetic import expression_for_composition, hex_grid
    from napari_roiscore.spots.table import SpotTable

    h, w = image.shape_yx
    pitch, diameter = 100.0 / pixel_size_um, 55.0 / pixel_size_um
    xy = hex_grid(w, h, pitch, margin=diameter / 2)
    comp = {role: footprint_fractions(marker_mask(image, channel), xy, diameter)
            for role, channel in (("tumour", "cancer cells"), ("vessel", "vessels"), ("macrophage", "macrophages"))}
    counts, genes = expression_for_composition(comp, seed=seed)
    obs = pd.DataFrame({f"frac_{k}": v for k, v in comp.items()}, index=[f"SPOT{i:03d}" for i in range(len(xy))])
    adata = ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=genes))
    adata.obsm["spatial"] = xy
    return SpotTable(adata=adata, diameter_px=diameter, shape="circle", pixel_size_um=pixel_size_um,
                     provenance={"reader": "simulated", "note": "expression simulated from the real image"})


def walkthrough(folder: Path, pixel_size_um: float = 0.5) -> dict:
    """Open, propose, simulate and score (no napari); returns every result and timing."""
    import tifffile

    from napari_roiscore.readers.channel_folder import read_channel_folder
    from napari_roiscore.rois.compartments import propose_compartments
    from napari_roiscore.scoring.scorer import RoiScorer
    from napari_roiscore.scoring.signature import Signature

    t0 = time.perf_counter()
    eager = np.stack([tifffile.imread(f) for f in sorted(folder.glob("*.tif"))])  # baseline: read every pixel
    t_eager = time.perf_counter() - t0
    t0 = time.perf_counter()
    image = read_channel_folder(folder, pixel_size_um=pixel_size_um)
    t_open = time.perf_counter() - t0
    t0 = time.perf_counter()
    comp = propose_compartments(image)
    t_propose = time.perf_counter() - t0
    spots = simulated_spots(image, pixel_size_um)
    scorer = RoiScorer(spots)
    tables = []
    for name, genes in SIGNATURES.items():
        table = scorer.table(comp.rois, scorer.spot_scores(Signature(name, genes), "mean_z"))
        table.insert(0, "signature", name)
        tables.append(table)
    import pandas as pd

    return {"image": image, "compartments": comp, "spots": spots, "table": pd.concat(tables, ignore_index=True),
            "seconds": {"read all TIFFs eagerly (baseline)": t_eager, "open field (lazy)": t_open,
                        "propose compartments": t_propose},
            "eager_bytes": eager.nbytes}


def screenshot(result: dict, path: Path, field: str) -> Path:
    """napari screenshot of the field: role channels, compartments, spots, attribution."""
    import napari

    from napari_roiscore._layer_data import image_layers, roi_layer, spots_layer

    image, comp, spots = result["image"], result["compartments"], result["spots"]
    viewer = napari.Viewer(show=True, title=f"napari-roiscore: MIBI-TOF {field}")
    for data, kw, kind in image_layers(image):
        getattr(viewer, f"add_{kind}")(data, **kw)
    data, kw, _ = spots_layer(spots, name="simulated spots")
    viewer.add_points(data, **kw)
    # stroma first, so that tumour outlines are drawn on top where the two meet
    data, kw, _ = roi_layer(comp.of_class("stroma") + comp.of_class("tumour"), name="proposed compartments",
                            pixel_size_um=image.pixel_size_um, edge_width=4.0)
    kw["face_color"] = [[*c[:3], 0.08] for c in kw["edge_color"]]  # a light fill tells the classes apart
    viewer.add_shapes(data, **kw)
    viewer.text_overlay.visible = True
    viewer.text_overlay.text = (f"{field}: real MIBI-TOF ion counts (pixel size {image.pixel_size_um:g} µm assumed); spots and their "
                                "expression simulated\n" + ATTRIBUTION.replace(" (Mendeley", "\n(Mendeley"))
    viewer.text_overlay.font_size = 9
    viewer.text_overlay.position = "bottom_left"
    viewer.scale_bar.visible = True
    viewer.window._qt_window.resize(1300, 1150)
    viewer.reset_view()
    from qtpy.QtWidgets import QApplication

    for _ in range(10):
        QApplication.processEvents()
        time.sleep(0.05)
    path.parent.mkdir(parents=True, exist_ok=True)
    shot = viewer.screenshot(canvas_only=True, flash=False)
    viewer.close()
    from PIL import Image

    # 256 colours keep the stains readable at a third of the file size (the PNG is committed)
    Image.fromarray(shot[..., :3]).quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--field", default="Point2206_pt1116_31620")
    ap.add_argument("--pixel-size", type=float, default=0.5, help="µm per pixel (not stored in the files)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--png", default="mibi_walkthrough.png")
    ap.add_argument("--no-screenshot", action="store_true")
    args = ap.parse_args(argv)
    folder = args.data / args.field
    if not folder.is_dir():
        print(f"skipped: real MIBI data not found at {folder} (it sits next to the CI checkout only)")
        return 0
    result = walkthrough(folder, args.pixel_size)
    comp = result["compartments"]
    print(f"{args.field}: {result['image'].n_channels} channels, {result['image'].shape_yx} px; roles: "
          + ", ".join(f"{r} = {n}" for n, r in zip(result["image"].channel_names, result["image"].roles)
                      if r != "other"))
    print(f"compartments: {len(comp.of_class('tumour'))} tumour, {len(comp.of_class('stroma'))} stroma "
          f"(count rules: {comp.settings['counts']}); {result['spots'].n_spots} simulated spots")
    secs = result["seconds"]
    base = secs["read all TIFFs eagerly (baseline)"]
    for what, s in secs.items():
        print(f"  {what:36s} {s * 1000:8.0f} ms   ({s / base:5.2f} x baseline)")
    both = secs["open field (lazy)"] + secs["propose compartments"]
    print(f"  {'open + propose':36s} {both * 1000:8.0f} ms")
    print(result["table"].to_string(index=False))
    args.out.mkdir(parents=True, exist_ok=True)
    csv = args.out / (Path(args.png).stem + "_scores.csv")
    result["table"].to_csv(csv, index=False)
    print(f"table: {csv}")
    if not args.no_screenshot:
        print(f"screenshot: {screenshot(result, args.out / args.png, args.field)}")
    print(ATTRIBUTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
