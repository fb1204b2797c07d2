"""Reading gene signatures from GMT, YAML and JSON files.

* GMT (MSigDB and most gene-set tools): one set per line; ``X_UP`` / ``X_DN``
  pairs become one signature with an up and a down set.
* YAML / JSON: ``{name, up, down, weights, description}`` mappings (see
  :meth:`~napari_roiscore.scoring.signature.Signature.from_dict`).

Every problem (unreadable file, bad syntax, a YAML boolean where a gene
should be) is a :class:`~napari_roiscore.errors.RoiScoreError` naming the
file and the fix.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.outputs import limited_list
from napari_roiscore.scoring.signature import Signature

__all__ = ["MAX_SIGNATURE_BYTES", "MAX_YAML_BYTES", "load_signatures"]


#: Larger GMT/JSON signature files are refused (all of MSigDB as GMT is ~30 MB).
MAX_SIGNATURE_BYTES = 64 * 1024**2


#: Larger YAML signature files are refused (hand-written panels are a few kB; YAML parses slowly).
MAX_YAML_BYTES = 4 * 1024**2


def load_signatures(path: str | Path) -> list[Signature]:
    """Read signatures from a GMT, YAML or JSON file.

    * GMT: one signature per line, ``name<TAB>description<TAB>gene...``.
      A pair of lines named ``X_UP`` / ``X_DN`` (or ``_DOWN``) becomes one
      signature ``X`` with an up and a down set; a line without its partner
      is an ordinary (up) set under its own name (e.g. ``GSE1_DN``).
    * Signatures sharing a name are numbered in file order — ``A``,
      ``A (2)``, ``A (3)`` — so each can be chosen by name (with a warning).
    * YAML / JSON: a mapping ``{name, up, down, weights, description}``, a list
      of such mappings, or ``{signatures: [...]}``.

    Raises
    ------
    RoiScoreError
        Unreadable file, unknown extension or malformed content.
    """
    path = Path(path)
    if not path.exists():
        raise RoiScoreError(
            f"Signature file {str(path)!r} does not exist.", "Check the path."
        )
    from napari_roiscore.outputs import protect_input, require_regular_file

    require_regular_file(path, "Signature file")  # a FIFO or device would block forever
    protect_input(path)  # no export may replace it
    suffix = path.suffix.lower()
    size = path.stat().st_size
    limit = MAX_YAML_BYTES if suffix in (".yaml", ".yml") else MAX_SIGNATURE_BYTES
    if size > limit:
        raise RoiScoreError(
            f"Signature file {str(path)!r} is {size / 1024**2:.1f} MB; {suffix or 'such'} signature files "
            f"are at most {limit // 1024**2} MB.",
            "Keep only the gene sets you score (a few hundred genes each).",
        )
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Excel, Notepad) is not part of the first name
    except (OSError, UnicodeDecodeError) as err:
        raise RoiScoreError(
            f"Cannot read signature file {str(path)!r}: {err}.",
            "Save it as UTF-8 text.",
        ) from None
    if suffix == ".gmt":
        return _numbered_duplicates(_parse_gmt(text, str(path)), str(path))
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)  # safe: no python tags; aliases stay shared references
        except (yaml.YAMLError, RecursionError) as err:
            raise RoiScoreError(
                f"Signature file {str(path)!r} is not valid YAML: {str(err)[:300]}.",
                "Fix the YAML syntax.",
            ) from None
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as err:
            raise RoiScoreError(
                f"Signature file {str(path)!r} is not valid JSON: {str(err)[:300]}.",
                "Fix the JSON syntax.",
            ) from None
    else:
        raise RoiScoreError(
            f"Signature file {str(path)!r} has an unknown extension {suffix!r}.",
            "Use .gmt, .yaml/.yml or .json.",
        )
    if isinstance(data, dict) and "signatures" in data:
        data = data["signatures"]
    items = data if isinstance(data, list) else [data]
    if not items:
        raise RoiScoreError(
            f"Signature file {str(path)!r} holds no signature.", "Add one."
        )
    return _numbered_duplicates([Signature.from_dict(item, source=str(path)) for item in items], str(path))


def _numbered_duplicates(sigs: list[Signature], source: str) -> list[Signature]:
    """Signatures sharing a name get " (2)", " (3)"... in file order, so each can be chosen by name."""
    import dataclasses

    seen: dict[str, int] = {}
    taken = {sig.name for sig in sigs}
    out = []
    renamed = []
    for sig in sigs:
        n = seen.get(sig.name, 0) + 1
        seen[sig.name] = n
        if n > 1:
            new = f"{sig.name} ({n})"
            while new in taken:
                n += 1
                new = f"{sig.name} ({n})"
            taken.add(new)
            renamed.append(new)
            sig = dataclasses.replace(sig, name=new)
        out.append(sig)
    if renamed:
        warnings.warn(f"{source}: several signatures share a name; later ones are numbered: "
                      f"{limited_list(renamed, 10)} (choose them by these names)", stacklevel=3)
    return out


def _parse_gmt(text: str, source: str) -> list[Signature]:
    rows: list[tuple[str, str, list[str]]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.rstrip("\n\r").split("\t")
        if len(parts) < 3:
            raise RoiScoreError(
                f"{source}, line {lineno}: a GMT line needs a name, a description "
                "and at least one gene, separated by tabs.",
                "Separate fields with TAB characters.",
            )
        rows.append((parts[0].strip(), parts[1].strip(), [g for g in parts[2:] if g.strip()]))
    if not rows:
        raise RoiScoreError(f"{source} holds no signature.", "Add a GMT line.")
    # X_UP + X_DN (or X_DOWN) -> one signature X; an unpaired set keeps its name, as an up set
    def split(name: str) -> tuple[str, str] | None:
        for sfx in ("_UP", "_DN", "_DOWN"):
            if name.upper().endswith(sfx) and len(name) > len(sfx):
                return name[: -len(sfx)], "up" if sfx == "_UP" else "down"
        return None

    ups: dict[str, int] = {}
    downs: dict[str, int] = {}
    for i, (name, _, _) in enumerate(rows):
        part = split(name)
        if part is not None:
            (ups if part[1] == "up" else downs).setdefault(part[0].upper(), i)
    partner: dict[int, int] = {}
    up_rows = set(ups.values())
    for base, i in ups.items():
        if base in downs:
            partner[i], partner[downs[base]] = downs[base], i
    out = []
    for i, (name, desc, genes) in enumerate(rows):
        if i not in partner:
            out.append(Signature(name=name, up=tuple(genes), description=desc))
        elif i < partner[i]:  # the pair is listed where its first line is
            up_i, down_i = (i, partner[i]) if i in up_rows else (partner[i], i)
            base = split(rows[up_i][0])[0]
            out.append(Signature(name=base, up=tuple(rows[up_i][2]), down=tuple(rows[down_i][2]),
                                 description=rows[up_i][1] or rows[down_i][1]))
    return out
