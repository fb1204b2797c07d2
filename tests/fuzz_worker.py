"""Child process of tests/test_fuzz_real_files.py: read mutated copies of real files.

Reads a JSON job from stdin: ``{"data": folder, "cases": [[file, seed], ...]}``.
For each case it mutates the bytes of ``file`` (seeded), runs the file's reader
on the copy and prints one JSON line *before* (``start``) and one *after*
(``ok`` / ``refused`` / ``bad``) — so when this process dies (a segfault) or
hangs, the parent knows which case did it.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

from napari_roiscore.errors import RoiScoreError

#: bytes a mutation likes to write (text numbers, separators, UTF-8 breakers, binary extremes)
TOKENS = [b"-1", b"NaN", b"1e309", b"-0", b"\xff", b"\x00", b",", b"\n", b"\t", b"\"", b"<", b"9" * 20,
          b"\xef\xbb\xbf", b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff\xff\xff\xff\xff", b"\x80"]
#: large files are mutated mostly in their first bytes (headers, metadata)
HEAD = 4096


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three random edits: bit flip, byte set, token insert/overwrite, delete, duplicate, truncate."""
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3))):
        if not buf:
            buf += rng.choice(TOKENS)
            continue
        n = len(buf)
        pos = rng.randrange(min(n, HEAD)) if n > HEAD and rng.random() < 0.7 else rng.randrange(n)
        op = rng.randrange(7)
        if op == 0:
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
        elif op == 2:
            buf[pos:pos] = rng.choice(TOKENS)
        elif op == 3:
            tok = rng.choice(TOKENS)
            buf[pos:pos + len(tok)] = tok
        elif op == 4:
            del buf[pos:pos + rng.randint(1, 64)]
        elif op == 5:
            buf[pos:pos] = buf[pos:pos + rng.randint(1, 256)]
        else:
            del buf[pos:]
    return bytes(buf)


def _in_copy(real: Path, data: bytes, tmp: Path, siblings: int = 0) -> Path:
    """Write ``data`` as ``real``'s name in ``tmp`` (with the real sibling files linked beside it)."""
    folder = tmp / "case"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    if siblings:
        for other in real.parent.iterdir():
            if other.name != real.name:
                (folder / other.name).symlink_to(other.resolve())
    out = folder / real.name
    out.write_bytes(data)
    return out


def run_reader(real: Path, copy: Path) -> None:
    """Read ``copy`` (a mutated ``real``) with its reader and check the result is valid."""
    name = real.name
    if name.endswith(".dcc"):
        from napari_roiscore.readers.geomx import read_dcc

        out = read_dcc(copy)
        counts = out["Code_Summary"].to_numpy()
        assert np.all(np.isfinite(counts)) and np.all(counts >= 0), "DCC counts"
    elif name.endswith(".zip"):
        from napari_roiscore.readers.geomx import read_pkc

        assert len(read_pkc(copy)) > 0
    elif name.endswith(".xlsx"):
        from napari_roiscore.readers.geomx import _read_annotations

        ann = _read_annotations(copy, None, "Sample_ID")
        assert ann["Sample_ID"].is_unique
    elif name.endswith(".h5"):
        from napari_roiscore.readers.tenx import read_10x_h5

        _valid_counts(read_10x_h5(copy))
    elif real.parent.name.endswith("_feature_bc_matrix"):
        from napari_roiscore.readers.tenx import read_10x_mtx

        _valid_counts(read_10x_mtx(copy.parent))
    elif name == "scalefactors_json.json":
        from napari_roiscore.readers.visium import read_scalefactors

        sf = read_scalefactors(copy)
        assert 0 < sf["spot_diameter_fullres"] < 1e6
    elif name.startswith("tissue_positions"):
        from napari_roiscore.readers.visium import read_tissue_positions

        pos = read_tissue_positions(copy)
        assert pos.index.is_unique
    elif name.endswith(".png"):
        from napari_roiscore.readers.tissue_image import read_png

        img = read_png(copy)
        assert img.ndim in (2, 3) and img.size > 0
    elif name.endswith((".tif", ".tiff")):
        from napari_roiscore.images.multiplex import read_multiplex_tiff

        image = read_multiplex_tiff(copy)
        px = image.pixel_size_um
        assert px is None or (np.isfinite(px) and px > 0)
        assert all(s > 0 for s in image.levels[0].shape)
    else:
        raise ValueError(f"no reader for {name}")


def _valid_counts(cm) -> None:
    X = cm.counts
    assert X.shape == (len(cm.barcodes), len(cm.features))
    assert X.has_canonical_format
    if X.nnz:
        assert X.indices.min() >= 0 and X.indices.max() < X.shape[1]
        assert np.all(np.isfinite(X.data)) and X.data.min() >= 0


def main() -> None:
    job = json.loads(sys.stdin.read())
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for i, (file, seed) in enumerate(job["cases"]):
            real = Path(file)
            rng = random.Random(seed)
            copy = _in_copy(real, mutate(real.read_bytes(), rng), tmp,
                            siblings=real.parent.name.endswith("_feature_bc_matrix"))
            print(json.dumps({"i": i, "start": True}), flush=True)
            try:
                run_reader(real, copy)
                outcome, detail = "ok", ""
            except RoiScoreError as err:
                outcome, detail = "refused", str(err)[:200]
            except BaseException as err:  # noqa: BLE001 - what the fuzz test looks for
                outcome = "bad"
                detail = f"{type(err).__name__}: {str(err)[:300]} | " + traceback.format_exc(limit=-3)[-900:]
            print(json.dumps({"i": i, "outcome": outcome, "detail": detail}), flush=True)


if __name__ == "__main__":
    main()
