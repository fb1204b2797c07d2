"""Channel roles guessed from real panel names: one channel per role, the best match."""

from __future__ import annotations

import pytest

from napari_roiscore.images.channels import guess_roles, normalise_marker_name, role_for_name

#: the 41 markers of the MIBI-TOF breast panel (Risom et al. 2022), as the files are named
MIBI_PANEL = ["AR", "CD11c", "CD14", "CD20", "CD3", "CD31", "CD36", "CD4", "CD44", "CD45", "CD56", "CD68", "CD8",
              "CK5", "CK7", "COLI", "COX2", "ECAD", "ER", "FAP", "FOXP3", "GLUT1", "GZMB", "HER2", "HH3",
              "HIF1a", "HLADRDPDQ", "IDO1", "Ki67", "MMP9", "MPO", "Nuc", "P", "P63", "PanKRT", "PD1", "PDL1",
              "SMA", "Tryptase", "VIM", "pS6"]


def test_the_41_real_mibi_names():
    assert len(MIBI_PANEL) == 41
    roles = guess_roles(MIBI_PANEL)
    chosen = {role: name for name, role in zip(MIBI_PANEL, roles) if role != "other"}
    assert chosen == {"nuclei": "Nuc", "cancer cells": "PanKRT", "vessels": "CD31", "macrophages": "CD68"}
    # every other marker is "other" — including the second-best candidates of each role
    assert roles.count("other") == 37
    fits = {n for n in MIBI_PANEL if role_for_name(n) != "other"}
    assert fits == {"Nuc", "HH3", "PanKRT", "ECAD", "CK5", "CK7", "CD31", "CD68", "CD14", "CD11c"}
    # the look-alikes stay other: CD4 / CD44 / CD45 are not CD4x roles, ER is not ERG, P is not PanKRT
    for name in ("CD4", "CD44", "CD45", "CD36", "ER", "P", "P63", "HER2"):
        assert role_for_name(name) == "other", name


def test_the_same_file_in_the_real_folder(shared_data):
    import os

    names = sorted(os.path.splitext(f)[0] for f in os.listdir(shared_data / "mibi_breast_risom2022"
                                                               / "Point2203_pt1072_31606"))
    assert sorted(MIBI_PANEL) == names


@pytest.mark.parametrize(("names", "expected"), [
    # IMC: metal tags around the marker; iridium intercalators are nuclei
    (["Ir191", "Ir193", "Pan-Keratin(Nd148Di)", "159Tb_CD68", "CD31_Nd145", "Sm149-CD163"],
     ["nuclei", "other", "cancer cells", "macrophages", "vessels", "other"]),
    # CODEX / CyCIF: DAPI before Hoechst; E-cadherin when there is no pan-keratin; vWF without CD31
    (["DAPI", "Hoechst", "E-Cadherin", "KRT8", "vWF", "CD34", "CD163", "CD11c"],
     ["nuclei", "other", "cancer cells", "other", "vessels", "other", "macrophages", "other"]),
    (["DNA1", "DNA2", "EpCAM", "PECAM1", "MRC1"], ["nuclei", "other", "cancer cells", "vessels", "macrophages"]),
    (["channel 0", "channel 1"], ["other", "other"]),
])
def test_other_panels(names, expected):
    assert guess_roles(names) == expected


def test_normalised_names():
    assert normalise_marker_name("CD68(Tb159Di)") == "cd68"
    assert normalise_marker_name("159Tb_CD68") == "cd68"
    assert normalise_marker_name("CD163") == "cd163"  # a number is not a metal tag without a separator
    assert normalise_marker_name("Ir191Di") == "ir191"
