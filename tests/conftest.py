from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from real_data import real_data

# CI must not be flaky: hypothesis explores the same examples on every run
settings.register_profile("roiscore", derandomize=True, deadline=None)
settings.load_profile("roiscore")

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "sample_images"

# Autosaves of the whole run go to a temporary folder, never next to real data — also
# when a debounced autosave fires after its test's own monkeypatch was undone.
# (Tests of the next-to-the-data rule remove the variable with monkeypatch.delenv.)
_AUTOSAVE_TMP = tempfile.mkdtemp(prefix="roiscore-test-autosave-")
os.environ.setdefault("NAPARI_ROISCORE_AUTOSAVE_DIR", _AUTOSAVE_TMP)


@pytest.fixture(scope="session")
def sample_paths() -> dict[str, Path]:
    return {
        "image": SAMPLE_DIR / "sample_slide.ome.tif",
        "spots": SAMPLE_DIR / "sample_spots.h5ad",
        "rois": SAMPLE_DIR / "sample_rois.geojson",
    }


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return real_data()


# ---------------------------------------------------------------------------
# No network: the core's tests run with outbound connections refused.
# Loopback (127.0.0.0/8, ::1, localhost) and unix sockets stay allowed, e.g.
# for a local dask cluster.  GUI tests (tests/_qt) are left alone.
# ---------------------------------------------------------------------------
_LOOPBACK = ("localhost", "127.", "::1", "0:0:0:0:0:0:0:1")


class NetworkBlocked(RuntimeError):
    """A test tried to reach the network."""


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # unix socket path
        return True
    if isinstance(address, tuple) and address:
        host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
        return host.startswith(_LOOPBACK) or host == ""
    return False


@pytest.fixture(autouse=True)
def _no_network(request, monkeypatch):
    if "_qt" in Path(str(request.node.fspath)).parts:
        yield
        return
    import socket

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_create = socket.create_connection

    def connect(self, address, *a, **k):
        if self.family == getattr(socket, "AF_UNIX", None) or _is_local(address):
            return real_connect(self, address, *a, **k)
        raise NetworkBlocked(f"test tried to connect to {address!r}; the core must work offline")

    def connect_ex(self, address, *a, **k):
        if self.family == getattr(socket, "AF_UNIX", None) or _is_local(address):
            return real_connect_ex(self, address, *a, **k)
        raise NetworkBlocked(f"test tried to connect to {address!r}; the core must work offline")

    def create_connection(address, *a, **k):
        if _is_local(address):
            return real_create(address, *a, **k)
        raise NetworkBlocked(f"test tried to connect to {address!r}; the core must work offline")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield
