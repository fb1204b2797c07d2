"""Crashed napari sessions for the autosave tests: real processes, real sidecars.

A "crashed session" is a real Python process that autosaves ROIs of a slide
while the lock of the slide's sidecar belongs to another (running) napari, so
it writes a sidecar of its own, and then ends without anyone restoring them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from napari_roiscore.rois.geojson import rois_to_geojson
from napari_roiscore.rois.roi import Roi

SRC = Path(__file__).resolve().parents[1] / "src"

_CRASHED_SESSION = """
import json, os, socket, sys, warnings
sys.path.insert(0, {src!r})
from napari_roiscore.rois.autosave import save_autosave, sidecar_path
from napari_roiscore.rois.geojson import parse_geojson
data = {data!r}
side = sidecar_path(data)
lock = side.with_name(side.name + ".lock")
if not lock.exists():  # the first napari (the test process, still running) holds the slide's lock
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({{"host": socket.gethostname(), "pid": os.getppid()}}))
with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    out = save_autosave(parse_geojson(json.loads(sys.argv[1]), "rois"), data, classes={classes!r})
print(json.dumps({{"path": str(out), "pid": os.getpid(), "warnings": [str(w.message) for w in seen]}}))
"""


def crashed_session(data: Path, rois: list[Roi], classes: list[str] | None = None) -> dict:
    """Run a second napari's autosave of ``rois`` for ``data`` in a process that then ends.

    Returns
    -------
    dict
        ``path`` (the sidecar it wrote), ``pid`` (its process id, no longer
        running on return) and ``warnings`` (what it was told).
    """
    code = _CRASHED_SESSION.format(src=str(SRC), data=str(data), classes=classes or ["tumour", "stroma"])
    out = subprocess.run([sys.executable, "-c", code, json.dumps(rois_to_geojson(rois))],
                         capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["path"] = Path(result["path"])
    return result


def dead_pid() -> int:
    """The id of a process that has finished (and so runs no more)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
