"""The ``--include ultralytics`` writer: ``<stem>_ultralytics.pt``, our weights in ultralytics' checkpoint layout.

Why a module of its own: every export format is one writer module of utils/export/ (see its ``__init__``). The layout
itself (a pickled FP16 model, as ultralytics' release files hold it) is utils/ultralytics_format.py's; here the file
is written into a work folder, read back through our allow-list reader and compared with the original weights.
"""

import os

from utils.export.verify import ExportError, compare_outputs, native_outputs, probe_images, work_dir
from utils.log import LOGGER, colorstr
from utils.ultralytics_format import FormatError, read_back, ultralytics_file, write_ultralytics


def export_ultralytics(weights, shape):
    """Write ``<stem>_ultralytics.pt`` (a pickled FP16 model as ultralytics' release files hold it), read it back
    through our allow-list reader and check it against the original weights; returns (path, max abs difference)."""
    prefix = colorstr("ultralytics:")
    f = ultralytics_file(weights)
    LOGGER.info(f"\n{prefix} starting export of {weights} in ultralytics' checkpoint layout (pickled model, FP16)...")
    with work_dir(f) as tmp:
        tmp_file = tmp / f.name
        try:
            _, model = write_ultralytics(weights, tmp_file)
            kind, classes, back = read_back(tmp_file)
        except FormatError as e:
            raise ExportError(str(e)) from None
        x = probe_images(shape)
        diff = compare_outputs(native_outputs(back, x), native_outputs(model, x), half=True,
                               what=f"{f.name} read back")
        LOGGER.info(f"{prefix} verified: read back through the allow-list reader (a pickled {kind}, {len(classes)} "
                    f"module classes), max abs difference {diff:.2e} vs the original weights (FP16 storage)")
        os.replace(tmp_file, f)
    return f, diff
