"""Screenshots of a large generated slide in the dock: whole slide, then cellular zoom.

    xvfb-run -a -s "-screen 0 1920x1200x24" python docs/large_slide_screenshots.py cells 1000000

writes docs/large_<kind>_<n>_whole.png (the raster: mean per tile, the dock's colour
scale and colour bar) and docs/large_<kind>_<n>_cell.png (zoomed in: every cell in view
as a filled marker on the same scale).  Slides from benchmarks/_large_slides.py.
"""
import sys, time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "benchmarks"))
import napari
from qtpy.QtWidgets import QApplication
from _large_slides import cell_slide, grid_slide
from napari_roiscore._layer_data import spots_layers
from napari_roiscore._qt.spot_view import controller_of, install_spot_views

kind, n = sys.argv[1], int(sys.argv[2])
spots = grid_slide(n) if kind == "grid" else cell_slide(n)
viewer = napari.Viewer(show=True)
viewer.window._qt_window.resize(1400, 1000)
app = QApplication.instance()
install_spot_views(viewer)
_, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
for data, kw, typ in spots_layers(spots, name="slide"):
    getattr(viewer, f"add_{typ}")(data, **kw)
ctl = controller_of(viewer, viewer.layers[-1])
t = time.time()
while ctl.stage != "full" and time.time() - t < 300:
    app.processEvents(); time.sleep(0.02)
for _ in range(30):
    app.processEvents(); time.sleep(0.02)
viewer.reset_view()
for _ in range(30):
    app.processEvents(); time.sleep(0.02)
viewer.window._qt_window.grab().save(str(DOCS / f"large_{kind}_{n}_whole.png"))
print("layers:", [l.name for l in viewer.layers])
# cellular zoom near the centre of tissue
cam = viewer.camera
cam.zoom = cam.zoom * 60
for _ in range(60):
    app.processEvents(); time.sleep(0.03)
viewer.window._qt_window.grab().save(str(DOCS / f"large_{kind}_{n}_cell.png"))
print("layers:", [(l.name, l.visible) for l in viewer.layers])
viewer.close()
