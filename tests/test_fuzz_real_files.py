"""Fuzz: mutated bytes of every real data file give a RoiScoreError or a valid result.

Every data file under ../shared/data (Visium CytAssist, GeoMx NGS, MIBI-TOF)
is mutated with seeded random edits (bit flips, extreme bytes, text tokens
such as "NaN" or "-1", deletions, duplications, truncation — large files
mostly within their first 4 KB, where headers and metadata are) and read by
its reader in a child process (tests/fuzz_worker.py).  Anything else than a
RoiScoreError or a valid result fails the test: another exception, a
segmentation fault (the child dies) or a hang (the child is killed after a
timeout) — naming the file and seed, so the case can be replayed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from real_data import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
DATA = SHARED_DATA
SEED = 20261202
#: mutations per file, by kind (bounded CI time: readers of large files are slower)
PER_FILE = {".dcc": 9, ".tif": 9, ".json": 200, ".csv": 130, ".png": 80, ".h5": 40, ".zip": 12, ".xlsx": 30,
            ".gz": 7}
BATCH = 250
BATCH_TIMEOUT_S = 120
WORKERS = 2


def _files() -> list[Path]:
    out = []
    for p in sorted(DATA.rglob("*")):
        # data files only: a sidecar someone left beside the data (autosave, lock) is not input
        if p.is_file() and p.suffix.lower() in PER_FILE and ".roiscore-autosave" not in p.name:
            out.append(p)
    return out


def _cases() -> list[tuple[str, int]]:
    cases = []
    for k, p in enumerate(_files()):
        n = PER_FILE[p.suffix.lower()]
        cases += [(str(p), SEED + 1000 * k + j) for j in range(n)]
    return cases


def _run_batch(cases: list[tuple[str, int]]) -> tuple[list[dict], str | None]:
    """Outcomes of one batch, and what went wrong with the child (crash or hang), if anything."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fuzz_worker.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = proc.communicate(json.dumps({"cases": cases}), timeout=BATCH_TIMEOUT_S)
        problem = None if proc.returncode == 0 else f"child exited with {proc.returncode}: {err[-800:]}"
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        problem = f"child still running after {BATCH_TIMEOUT_S} s (a hang)"
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    done = [r for r in lines if "outcome" in r]
    started = [r["i"] for r in lines if r.get("start")]
    if problem and started and (not done or started[-1] != done[-1]["i"]):
        i = started[-1]
        problem += f" — during {Path(cases[i][0]).name} seed {cases[i][1]}"
    for r in done:
        r["file"], r["seed"] = cases[r["i"]]
    return done, problem


@pytest.mark.skipif(not DATA.is_dir(), reason="real data not present (../shared/data)")
def test_mutated_real_files_never_crash():
    cases = _cases()
    assert len(cases) >= 2000, len(cases)
    batches = [cases[i:i + BATCH] for i in range(0, len(cases), BATCH)]
    start = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(_run_batch, batches))
    elapsed = time.monotonic() - start
    outcomes = [r for done, _ in results for r in done]
    problems = [p for _, p in results if p]
    bad = [r for r in outcomes if r["outcome"] == "bad"]
    tally = {k: sum(r["outcome"] == k for r in outcomes) for k in ("ok", "refused", "bad")}
    print(f"\nfuzz: {len(outcomes)} mutations of {len(_files())} real files in {elapsed:.1f} s: {tally}")
    report = [f"{Path(r['file']).name} seed {r['seed']}: {r['detail']}" for r in bad[:8]]
    assert not problems and not bad, "\n".join(problems + report) + f"\n({len(bad)} bad of {len(outcomes)})"
    assert len(outcomes) == len(cases)
