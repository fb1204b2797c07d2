"""UCell as UCell computes it today: every spot of the real Visium slide against pyucell.

pyucell 0.8 (the Python port kept by the UCell authors) implements UCell >= 2.8:
ranks >= maxRank count as maxRank, score = 1 - U / (n*maxRank - n(n+1)/2), ties
averaged, genes absent from the data imputed as unexpressed and kept in n.

Tolerance: pyucell keeps ranks and scores in float32, whose spacing near 1 is
1.2e-7; rank sums are exact in float32 (half-integers below 2**24), so the two
agree to a few 1e-8.  ``atol=1e-6`` allows for that rounding and nothing else:
the 2021 formula differs from UCell >= 2.8 by ~1e-3 per spot and imputing
versus dropping a missing gene by up to ~0.2, both far above it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_roiscore.scoring.methods import score_spots
from napari_roiscore.scoring.signature import Signature
from real_data import real_data

pyucell = pytest.importorskip("pyucell", reason="pyucell is in the 'test' extra: pip install -e .[test]")

ATOL = 1e-6  # pyucell's float32 (see module docstring)


@pytest.fixture(scope="module")
def visium():
    from napari_roiscore.readers.visium import read_spaceranger

    return read_spaceranger(real_data("visium_cytassist_mouse"), load_images=False)


@pytest.fixture(scope="module")
def signatures(visium) -> dict[str, list[str]]:
    """Abundant, rare and absent genes, chosen from the data (pyucell notation: 'Gene-' = down)."""
    X = visium.counts.tocsr()
    names = np.asarray(visium.adata.var_names)
    detected = np.asarray((X > 0).mean(axis=0)).ravel()
    by_mean = names[np.argsort(-np.asarray(X.mean(axis=0)).ravel(), kind="stable")]
    rare = list(names[(detected > 0.005) & (detected < 0.03)][:6])
    abundant = list(by_mean[:8])
    return {
        "abundant": abundant,
        "rare": rare,
        "middling": list(by_mean[1000:1010]),
        "with_absent": abundant[:3] + rare[:2] + ["NotAGene1", "NotAGene2"],
        "up_and_down": abundant[:4] + [g + "-" for g in rare[:3]],
        "down_absent": abundant[4:7] + ["NotAGene3-", rare[3] + "-"],
    }


@pytest.fixture(scope="module")
def reference(visium, signatures):
    import anndata as ad

    adata = ad.AnnData(X=visium.counts.tocsr().astype(np.float32), obs=visium.adata.obs[[]].copy(),
                       var=visium.adata.var[[]].copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyucell.compute_ucell_scores(adata, signatures, max_rank=1500, n_jobs=1)
    return {name: adata.obs[f"{name}_UCell"].to_numpy(np.float64) for name in signatures}


def _signature(name: str, genes: list[str]) -> Signature:
    return Signature(name=name, up=tuple(g for g in genes if not g.endswith("-")),
                     down=tuple(g[:-1] for g in genes if g.endswith("-")))


@pytest.mark.parametrize("name", ["abundant", "rare", "middling", "with_absent", "up_and_down", "down_absent"])
def test_ucell_equals_pyucell_on_every_real_spot(visium, signatures, reference, name):
    ours = score_spots(visium, _signature(name, signatures[name]), "ucell").values
    ref = reference[name]
    assert ref.std() > 0.01, "a signature that scores the same everywhere tests nothing"
    np.testing.assert_allclose(ours, ref, rtol=0, atol=ATOL)


def test_the_2021_variant_is_kept_and_differs_measurably(visium, signatures, reference):
    old = score_spots(visium, _signature("abundant", signatures["abundant"]), "ucell", variant="2021")
    assert old.params["variant"] == "2021"
    diff = np.abs(old.values - reference["abundant"]).max()
    assert 1e-4 < diff < 0.05, diff  # the normalisation changed in UCell 2.8, slightly
    dropped = score_spots(visium, _signature("with_absent", signatures["with_absent"]), "ucell", variant="2021")
    assert np.abs(dropped.values - reference["with_absent"]).max() > 0.05  # missing genes left out
