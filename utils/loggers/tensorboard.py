"""TensorBoard event files written without a deep-learning framework.

``SummaryWriter`` offers the part of ``torch.utils.tensorboard.SummaryWriter`` the loggers use (``add_scalar``,
``add_image``, ``flush``, ``close``) on top of the ``tensorboard`` package's own event-file writer and protocol
buffers, so an OneFlow run (no torch in its venv) logs exactly like a PyTorch one. Images are stored PNG-encoded, as
torch's writer stores them.
"""

import time
from pathlib import Path

import cv2
import numpy as np


class SummaryWriter:
    """Scalars and images of one run folder, in one ``events.out.tfevents.*`` file there.

    Raises:
        ImportError: the ``tensorboard`` package is not installed (pip install tensorboard).
    """

    def __init__(self, log_dir, flush_secs=120):
        from tensorboard.compat.proto.event_pb2 import Event  # noqa: PLC0415 (optional dependency)
        from tensorboard.compat.proto.summary_pb2 import Summary  # noqa: PLC0415
        from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: PLC0415

        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._event, self._summary = Event, Summary
        self._writer = EventFileWriter(str(self.log_dir), flush_secs=flush_secs)

    def _write(self, step, value):
        self._writer.add_event(self._event(wall_time=time.time(), step=int(step),
                                           summary=self._summary(value=[value])))

    def add_scalar(self, tag, value, step):
        """One point of the curve ``tag`` (a float32 in the event file, as every TensorBoard writer stores it)."""
        self._write(step, self._summary.Value(tag=tag, simple_value=float(value)))

    def add_image(self, tag, img, step, dataformats="HWC"):
        """One image: RGB (or gray) uint8 0-255, or float 0-1, laid out as ``dataformats`` ('HWC', 'CHW' or 'HW')."""
        img = np.asarray(img)
        if dataformats == "CHW":
            img = img.transpose(1, 2, 0)
        elif dataformats == "HW":
            img = img[..., None]
        elif dataformats != "HWC":
            raise ValueError(f"dataformats {dataformats!r}: expected 'HWC', 'CHW' or 'HW'")
        if img.dtype != np.uint8:
            img = (np.clip(img.astype(np.float32), 0, 1) * 255).round().astype(np.uint8)
        h, w, c = img.shape
        ok, png = cv2.imencode(".png", img[..., ::-1] if c == 3 else img)  # OpenCV writes BGR
        if not ok:
            raise ValueError(f"image {tag!r} of shape {img.shape} could not be PNG-encoded")
        image = self._summary.Image(height=h, width=w, colorspace=c, encoded_image_string=png.tobytes())
        self._write(step, self._summary.Value(tag=tag, image=image))

    def add_image_file(self, tag, file, step):
        """The image file ``file`` (any format OpenCV reads) under ``tag``; False when it cannot be read."""
        im = cv2.imread(str(file))
        if im is None:
            return False
        self.add_image(tag, im[..., ::-1], step, dataformats="HWC")
        return True

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()
