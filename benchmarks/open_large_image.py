"""Benchmark: open a 4-channel 40k × 40k pyramidal OME-TIFF in napari.

Writes the image on the fly (tile by tile, from a handful of pre-compressed
tiles, so memory stays low), then, in a fresh subprocess with a real napari
viewer (under Xvfb when there is no display), measures

* napari viewer start (window + first GL frame), reported apart;
* time to first render, cold: the file flushed and evicted from the page cache
  (``posix_fadvise`` DONTNEED, checked with ``fincore``), then
  ``read_multiplex_tiff`` + one ``viewer.add_image`` per channel (as the
  plugin's reader does) + drawing until the final frame — layers loaded,
  pyramid levels settled, the canvas unchanged over three screenshots — and
  then checked against the displayed level's pixels (share of the pixels that
  should be lit that are); it is also the first image of the session (imports
  of dask and napari's unit registry included);
* warm (baseline, same run): the same file again, cached; cold / warm printed;
* drawing after zooming to full resolution at the centre;
* peak RSS of that process (``ru_maxrss``), and its RSS with an empty viewer.

Goals (issue 7): first render ≤ 2 s and peak RSS ≤ 1.5 GB; an eager read of
level 0 would need C × Y × X × 2 bytes = 12.8 GB.

    PYTHONPATH=src python benchmarks/open_large_image.py              # 40k × 40k × 4
    PYTHONPATH=src python benchmarks/open_large_image.py --size 20000 --keep --dir /data/tmp
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

CHANNELS = ["DAPI", "panCK", "CD31", "CD68"]
GOAL_RENDER_S = 2.0
GOAL_RSS_GB = 1.5


# -- writing ------------------------------------------------------------------------------

def _templates(tile: int, channel: int, n: int = 6) -> list[bytes]:
    """A few zlib-compressed tiles of bright discs ("cells") for one channel."""
    out = []
    yy, xx = np.mgrid[:tile, :tile]
    for k in range(n):
        rng = np.random.default_rng(1000 * channel + k)
        t = np.zeros((tile, tile), np.uint16)
        for _ in range(40):
            cy, cx = rng.integers(0, tile, 2)
            t[(yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(30, 200)] = rng.integers(8000, 40000)
        out.append(zlib.compress(t.tobytes(), 1))
    return out


def write_pyramid(path: Path, size: int, n_channels: int, tile: int, pixel_um: float = 0.5) -> list[int]:
    """Write a tiled, zlib-compressed OME-TIFF pyramid (SubIFDs) without holding it in memory.

    Tissue is an ellipse covering about half the slide; outside it tiles are empty.
    Returns the level sizes.
    """
    import tifffile

    sizes = [size]
    while sizes[-1] > 2 * tile:
        sizes.append(sizes[-1] // 2)
    empty = zlib.compress(np.zeros((tile, tile), np.uint16).tobytes(), 1)
    templates = [_templates(tile, c) for c in range(n_channels)]

    def tiles(n: int):
        nt = -(-n // tile)
        centres = (np.arange(nt) + 0.5) / nt
        for c in range(n_channels):
            for ty, fy in enumerate(centres):
                for tx, fx in enumerate(centres):
                    inside = ((fx - 0.5) / 0.45) ** 2 + ((fy - 0.5) / 0.35) ** 2 < 1.0
                    yield templates[c][(ty * 31 + tx * 17) % len(templates[c])] if inside else empty

    opts = {"dtype": np.uint16, "tile": (tile, tile), "compression": "zlib"}
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(tiles(size), shape=(n_channels, size, size), subifds=len(sizes) - 1, **opts,
                 metadata={"axes": "CYX", "Channel": {"Name": CHANNELS[:n_channels]},
                           "PhysicalSizeX": pixel_um, "PhysicalSizeXUnit": "µm",
                           "PhysicalSizeY": pixel_um, "PhysicalSizeYUnit": "µm"})
        for n in sizes[1:]:
            tw.write(tiles(n), shape=(n_channels, n, n), subfiletype=1, metadata=None, **opts)
    return sizes


# -- measuring (runs in a fresh process) ----------------------------------------------------

def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _render_until_final(viewer, app, timeout: float = 60.0) -> tuple[np.ndarray, float]:
    """Render until the final frame: every layer loaded, its level settled, the canvas unchanged.

    Screenshots are taken in a loop; the frame counts as final once every
    layer reports ``loaded``, the displayed pyramid levels stopped changing
    and three screenshots in a row are identical.  Returns that frame and the
    time (from the call) at which it first appeared — not the first lit pixels.
    """
    t0 = time.perf_counter()
    prev, since, same = None, 0.0, 0
    levels = None
    while True:
        app.processEvents()
        shot = viewer.screenshot(canvas_only=True, flash=False)
        now = time.perf_counter() - t0
        lv = [int(getattr(ly, "data_level", 0)) for ly in viewer.layers]
        settled = all(getattr(ly, "loaded", True) for ly in viewer.layers) and lv == levels
        if prev is not None and settled and np.array_equal(shot, prev) and shot[..., :3].max() > 0:
            same += 1
        else:
            same, since = 0, now
        levels, prev = lv, shot
        if same >= 3 or now > timeout:
            return shot, since


def _coverage(viewer, shot: np.ndarray) -> tuple[float, float]:
    """Fraction of the canvas pixels that should show image content (displayed level, any
    channel bright enough to light an 8-bit pixel) which are lit, and the share of the canvas
    they make up (edge pixels, which may land one pixel off, are not judged).  Read after the timing (it loads the displayed level whole)."""
    h, w = shot.shape[:2]
    zoom = viewer.camera.zoom
    cy, cx = viewer.camera.center[-2:]
    rows = (np.arange(h) + 0.5 - h / 2) / zoom + cy
    cols = (np.arange(w) + 0.5 - w / 2) / zoom + cx
    expected = np.zeros((h, w), bool)
    for ly in viewer.layers:
        lvl = int(ly.data_level)
        data = np.asarray(ly.data[lvl])
        ds = np.asarray(ly.downsample_factors[lvl])[-2:]
        sc, tr = np.asarray(ly.scale)[-2:], np.asarray(ly.translate)[-2:]
        iy = np.round((rows - tr[0]) / sc[0] / ds[0]).astype(int)
        ix = np.round((cols - tr[1]) / sc[1] / ds[1]).astype(int)
        oky, okx = (iy >= 0) & (iy < data.shape[-2]), (ix >= 0) & (ix < data.shape[-1])
        sub = np.zeros((h, w), bool)
        lo, hi = ly.contrast_limits
        # lit on an 8-bit canvas once the colormap gives at least 1/255 of full brightness
        sub[np.ix_(oky, okx)] = data[np.ix_(iy[oky], ix[okx])] > lo + (hi - lo) * 1.5 / 255
        expected |= sub
    from scipy.ndimage import binary_erosion

    lit = shot[..., :3].max(axis=-1) > 0
    inner = binary_erosion(expected)  # edge pixels may land one pixel off: judge the inside
    return float(lit[inner].mean()) if inner.any() else 0.0, float(expected.mean())


def _resident_fraction(path: Path) -> float | None:
    """Share of the file in the page cache (util-linux ``fincore``), None when unavailable."""
    exe = shutil.which("fincore")
    if exe is None:
        return None
    out = subprocess.run([exe, "--bytes", "--noheadings", "--output", "RES", str(path)],
                         capture_output=True, text=True)
    try:
        return int(out.stdout.split()[0]) / path.stat().st_size
    except (IndexError, ValueError):
        return None


def evict(path: Path) -> None:
    """Drop the file from the page cache (written pages are flushed first, else they stay)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def measure(path: Path) -> dict:
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_roiscore._layer_data import image_layers
    from napari_roiscore.images.multiplex import read_multiplex_tiff

    t0 = time.perf_counter()
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    app = QApplication.instance()
    app.processEvents()
    viewer.screenshot(canvas_only=True, flash=False)  # first GL start happens here
    t_viewer = time.perf_counter() - t0
    rss_empty = _rss_mb()

    cached_before = _resident_fraction(path)
    evict(path)  # cold: the file is not in the page cache
    cached_cold = _resident_fraction(path)
    t1 = time.perf_counter()
    image = read_multiplex_tiff(path)
    for data, kwargs, _ in image_layers(image):
        viewer.add_image(data, **kwargs)
    t_added = time.perf_counter() - t1
    shot, t_final = _render_until_final(viewer, app)
    t_first = t_added + t_final
    levels_overview = [int(ly.data_level) for ly in viewer.layers]
    lit_overview = float((shot[..., :3].max(axis=-1) > 0).mean())
    covered, image_share = _coverage(viewer, shot)

    # zoom to full resolution (1 screen pixel = 1 level-0 pixel) at the centre
    px = image.pixel_size_um or 1.0
    ny, nx = image.shape_yx
    t2 = time.perf_counter()
    viewer.camera.center = (ny * px / 2, nx * px / 2)
    viewer.camera.zoom = 1.0 / px
    t_camera = time.perf_counter() - t2  # napari slices the new level here, synchronously
    shot, t_final_zoom = _render_until_final(viewer, app)
    t_zoom = t_camera + t_final_zoom
    levels = [int(ly.data_level) for ly in viewer.layers]

    # the same file again in the same session: imports (dask, pint units) already done
    viewer.layers.clear()
    viewer.reset_view()
    app.processEvents()
    t3 = time.perf_counter()
    image = read_multiplex_tiff(path)
    for data, kwargs, _ in image_layers(image):
        viewer.add_image(data, **kwargs)
    t_warm_added = time.perf_counter() - t3
    _, t_warm_final = _render_until_final(viewer, app)
    t_warm = t_warm_added + t_warm_final
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # kB → MB on Linux
    viewer.close()
    return {
        "viewer_start_s": t_viewer, "open_and_add_s": t_added, "first_render_s": t_first,
        "warm_first_render_s": t_warm,
        "zoom_full_res_render_s": t_zoom, "levels_after_zoom": levels,
        "lit_fraction_overview": lit_overview, "coverage_overview": covered,
        "image_share_of_canvas": image_share, "levels_overview": levels_overview,
        "cached_before_evict": cached_before, "cached_after_evict": cached_cold, "rss_empty_viewer_mb": rss_empty, "peak_rss_mb": peak,
        "shape": [image.n_channels, ny, nx], "n_levels": len(image.levels),
        "chunks": list(image.levels[0].chunksize),
    }


# -- driver ------------------------------------------------------------------------------------

def _child_command(path: Path) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--measure", str(path)]
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            raise SystemExit("No display and no xvfb-run: run under a display or install xvfb.")
        cmd = [xvfb, "-a", "-s", "-screen 0 1920x1200x24", *cmd]
    return cmd


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=40_000, help="level-0 width and height (px)")
    ap.add_argument("--channels", type=int, default=4, choices=range(1, 5))
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--dir", type=Path, default=None, help="where to write the image (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the written image")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.measure:
        print("RESULT " + json.dumps(measure(args.measure)), flush=True)
        return 0

    folder = Path(tempfile.mkdtemp(prefix="roiscore_bench_", dir=args.dir))
    free_gb = shutil.disk_usage(folder).free / 1e9
    if free_gb < 3:
        raise SystemExit(f"only {free_gb:.1f} GB free in {folder}; use --dir with more space")
    path = folder / f"large_{args.size}.ome.tif"
    try:
        t0 = time.perf_counter()
        sizes = write_pyramid(path, args.size, args.channels, args.tile)
        t_write = time.perf_counter() - t0
        evict(path)  # written by this process: flushed and dropped from the page cache
        eager_gb = args.channels * args.size * args.size * 2 / 1e9
        print(f"wrote {path.name}: {args.channels} × {args.size} × {args.size} uint16, tiles {args.tile}, "
              f"zlib, {len(sizes)} levels {sizes}; {path.stat().st_size / 1e9:.2f} GB on disk in {t_write:.1f} s")
        print(f"an eager read of level 0 would need {eager_gb:.1f} GB")

        proc = subprocess.run(_child_command(path), capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                  [str(Path(__file__).resolve().parents[1] / "src"),
                                   os.environ.get("PYTHONPATH", "")])})
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
            return 1
        r = json.loads(line[len("RESULT "):])
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    ok_t = r["first_render_s"] <= GOAL_RENDER_S
    ok_m = r["peak_rss_mb"] / 1e3 <= GOAL_RSS_GB
    print(f"dask chunks {r['chunks']}, {r['n_levels']} levels")
    cache = ("" if r["cached_after_evict"] is None else
             f"; file in page cache {100 * r['cached_before_evict']:.0f} % -> {100 * r['cached_after_evict']:.0f} % after evicting")
    print(f"napari viewer start (reported apart):     {r['viewer_start_s']:6.2f} s, RSS {r['rss_empty_viewer_mb']:.0f} MB")
    print(f"open + add {args.channels} channel layers, cold:      {r['open_and_add_s']:6.2f} s{cache}")
    print(f"first render, cold (final level drawn):   {r['first_render_s']:6.2f} s   "
          f"goal ≤ {GOAL_RENDER_S:.0f} s: {'met' if ok_t else 'NOT met'}  (levels {r['levels_overview']}; "
          f"{100 * r['coverage_overview']:.1f} % of the canvas that should show image content (1-px edges aside) is lit; "
          f"canvas lit {100 * r['lit_fraction_overview']:.0f} %, expected {100 * r['image_share_of_canvas']:.0f} %)")
    print(f"viewer start + cold first render:         {r['viewer_start_s'] + r['first_render_s']:6.2f} s")
    print(f"same, warm (second open, file cached):    {r['warm_first_render_s']:6.2f} s   "
          f"cold / warm = {r['first_render_s'] / r['warm_first_render_s']:.2f}x")
    print(f"zoom to full resolution at centre, draw:  {r['zoom_full_res_render_s']:6.2f} s   "
          f"(levels shown: {r['levels_after_zoom']})")
    print(f"peak RSS of the viewer process:           {r['peak_rss_mb'] / 1e3:6.2f} GB  "
          f"goal ≤ {GOAL_RSS_GB} GB: {'met' if ok_m else 'NOT met'}  "
          f"(eager read: {eager_gb:.1f} GB, {eager_gb / (r['peak_rss_mb'] / 1e3):.0f}× more)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
