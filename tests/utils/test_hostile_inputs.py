"""Hostile images and labels: header bombs, truncated and garbage files, NaN labels and polygons. Each is skipped
with a warning naming the file (detect, val/train scans, the hub), never a traceback or a silent success."""

import struct
import zlib

import cv2
import numpy as np
import pytest

from tests.test_detect import log_messages
from utils.data import formats
from utils.data.images import CV_MAX_PIXELS, ImageError, check_image, imread
from utils.data.loaders import LoadImages


def png_header(w, h):
    """A valid tiny PNG whose header declares w x h pixels (a decompression bomb's first bytes)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    jpg = good.read_bytes()
    out = {"good": good, "huge": tmp_path / "huge.png", "truncated": tmp_path / "truncated.jpg",
           "garbage": tmp_path / "garbage.jpg", "video": tmp_path / "garbage.mp4", "padded": tmp_path / "padded.jpg"}
    out["huge"].write_bytes(png_header(100_000, 100_000))
    out["truncated"].write_bytes(jpg[: len(jpg) // 2])
    out["garbage"].write_bytes(b"not an image at all" * 20)
    out["video"].write_bytes(b"not a video" * 100)
    out["padded"].write_bytes(jpg + b"\x00" * 16)  # some cameras pad after the end marker: still a good JPEG
    return out


def test_imread_names_the_file_and_the_reason(files):
    assert imread(files["good"]).shape == (48, 64, 3) and imread(files["padded"]).shape == (48, 64, 3)
    cases = [("huge", "too large to decode"), ("truncated", "truncated JPEG"), ("garbage", "not a readable")]
    for key, reason in cases:
        with pytest.raises(ImageError, match=reason) as e:
            imread(files[key])
        assert str(files[key]) in str(e.value)
    assert CV_MAX_PIXELS == 1 << 30


def test_header_over_opencv_limit_but_under_pil_is_refused_before_decoding(files, monkeypatch):
    monkeypatch.setattr("PIL.Image.MAX_IMAGE_PIXELS", None)  # PIL's own guard off: our check still holds
    with pytest.raises(ImageError, match=r"100000x100000 = 10000000000 pixels, over the decoder's limit"):
        check_image(files["huge"])


def test_detect_loader_skips_each_bad_file_with_a_warning(files):
    paths = [str(files[k]) for k in ("huge", "good", "truncated", "garbage", "video")]
    with log_messages() as logs:
        got = [p for p, *_ in LoadImages(paths, img_size=64)]
    assert got == [str(files["good"])]
    text = "\n".join(logs)
    for key in ("huge", "truncated", "garbage", "video"):
        assert f"{files[key]}" in text, key


def test_detect_loader_with_nothing_readable_is_an_error(files):
    with log_messages(), pytest.raises(ImageError, match="none of the 2 image/video file"):
        list(LoadImages([str(files["truncated"]), str(files["video"])], img_size=64))


def test_hub_skips_unreadable_images(files):
    from utils.autoshape import read_images

    with log_messages() as logs:
        ims, names = read_images([str(files["huge"]), str(files["good"]), str(files["truncated"])])
    assert names == ["good.jpg"] and ims[0].shape == (48, 64, 3)
    assert sum("skipping" in m for m in logs) == 2
    with log_messages(), pytest.raises(ImageError, match="no readable image"):
        read_images([str(files["garbage"])])


# ----------------------------------------------------------------------------------------------------------- labels
@pytest.mark.parametrize("row", ["0 nan 0.5 0.2 0.2", "0 0.5 0.5 0.2 inf", "nan 0.5 0.5 0.2 0.2",
                                 "0 0.1 0.1 0.9 0.1 nan 0.9", "0 0.1 0.1 0.9 0.1 0.5 0.9 0.2 -inf"])
def test_non_finite_labels_and_polygons_skip_the_file(row, files, tmp_path):
    lb = tmp_path / "good.txt"
    lb.write_text(f"1 0.5 0.5 0.2 0.2\n{row}\n" if len(row.split()) == 5 else f"{row}\n0 0.2 0.2 0.8 0.2 0.5 0.8\n")
    im_file, labels, *_, corrupt, msg = formats.verify_image_label((str(files["good"]), str(lb), "prefix: "))
    assert im_file is None and labels is None and corrupt == 1
    assert str(lb) in msg and ("non-finite" in msg or "negative" in msg or "out of bounds" in msg), msg


def test_finite_labels_still_pass(files, tmp_path):
    lb = tmp_path / "good.txt"
    lb.write_text("1 0.5 0.5 0.2 0.2\n0 0.25 0.25 0.1 0.1\n")
    im_file, labels, shape, _, nm, nf, ne, nc, msg = formats.verify_image_label((str(files["good"]), str(lb), ""))
    assert im_file == str(files["good"]) and labels.shape == (2, 5) and (nf, nc) == (1, 0) and shape == (64, 48)


def test_dataset_scan_skips_bad_images(files, tmp_path):
    for key in ("huge", "truncated", "garbage"):
        *_, corrupt, msg = formats.verify_image_label((str(files[key]), str(tmp_path / "none.txt"), ""))
        assert corrupt == 1 and str(files[key]) in msg and "ignoring corrupt image/label" in msg
