"""``python -m napari_roiscore.cli``: the ``roiscore`` command.

The commands run from the importable package, so that Dask workers find the
task functions as ``napari_roiscore.cli.batch.*`` rather than as pickled
``__main__`` code.
"""

import sys

from napari_roiscore.cli import main

if __name__ == "__main__":  # importing this module (e.g. to list modules) runs nothing
    sys.exit(main())
