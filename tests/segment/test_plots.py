"""Segmentation plots: mosaics with masks, results.png of segment training, masks drawn on an image."""

import cv2
import numpy as np

from utils.annotator import Annotator, colors
from utils.backend import from_numpy, to_numpy
from utils.plots import plot_images
from utils.segment.metrics import KEYS, RESULTS_CSV_WIDTH
from utils.segment.plots import draw_masks, plot_images_and_masks, plot_results_with_masks


def _batch():
    images = np.full((2, 3, 64, 64), 128, np.uint8)
    targets = np.array([[0, 1, 0.25, 0.25, 0.3, 0.3], [0, 2, 0.7, 0.7, 0.4, 0.4], [1, 0, 0.5, 0.5, 0.5, 0.5]],
                       np.float32)
    per = np.zeros((3, 16, 16), np.uint8)
    per[0, 2:6, 2:6] = 1
    per[1, 9:14, 9:14] = 1
    per[2, 5:11, 5:11] = 1
    index = np.zeros((2, 16, 16), np.uint8)
    index[0][per[0] > 0], index[0][per[1] > 0], index[1][per[2] > 0] = 1, 2, 1
    return images, targets, per, index


def test_mosaic_colours_masks_with_their_class(tmp_path):
    images, targets, per, index = _batch()
    plain = plot_images(images, targets, fname=tmp_path / "plain.jpg")
    a = plot_images_and_masks(images, targets, index, fname=tmp_path / "a.jpg", overlap=True)
    b = plot_images_and_masks(images, targets, per, fname=tmp_path / "b.jpg", overlap=False)
    assert (tmp_path / "a.jpg").is_file() and a.shape == plain.shape == (128, 128, 3)
    np.testing.assert_array_equal(a, b)  # the two mask layouts draw the same
    # tile 0 is the top-left 64 x 64; mask 0 covers its pixels 8..23 (the label's text ends at 17):
    # 40% grey + 60% colour of class 1
    expect = np.round(128 * 0.4 + np.array(colors(1)) * 0.6)
    np.testing.assert_allclose(a[20, 20], expect, atol=1)
    assert (a[60:64, 30:34] == plain[60:64, 30:34]).all()  # away from masks and boxes: untouched
    tile1 = a[64:128, 0:64]  # column-major grid: image 1 is below image 0
    np.testing.assert_allclose(tile1[32, 32], np.round(128 * 0.4 + np.array(colors(0)) * 0.6), atol=1)
    guessed = plot_images_and_masks(images, targets, index, fname=tmp_path / "c.jpg")  # max 2 > 1: overlap
    np.testing.assert_array_equal(guessed, a)


def test_predictions_below_025_have_no_mask(tmp_path):
    images, targets, per, _ = _batch()
    preds = np.concatenate((targets, np.array([[0.9], [0.1], [0.9]], np.float32)), 1)
    m = plot_images_and_masks(images, preds, per, fname=tmp_path / "p.jpg", overlap=False)
    assert not (m[50, 50] == np.round(128 * 0.4 + np.array(colors(2)) * 0.6)).all()
    np.testing.assert_allclose(m[20, 20], np.round(128 * 0.4 + np.array(colors(1)) * 0.6), atol=1)


def test_results_png_from_a_segment_results_csv(tmp_path):
    w = RESULTS_CSV_WIDTH
    lines = [((f"%{w}s," * 20) % tuple(["epoch"] + KEYS)).rstrip(",")]
    rng = np.random.default_rng(0)
    for e in range(5):
        lines.append(((f"%{w}.5g," * 20) % tuple([e] + list(rng.random(19)))).rstrip(","))
    (tmp_path / "results.csv").write_text("\n".join(lines) + "\n")
    out = plot_results_with_masks(file=tmp_path / "results.csv")
    assert out == tmp_path / "results.png" and cv2.imread(str(out)).shape[1] > 1000
    assert plot_results_with_masks(dir=tmp_path / "nothing") is None


def test_draw_masks_on_the_original_image():
    im0 = np.full((50, 100, 3), 100, np.uint8)  # BGR
    masks = np.zeros((1, 64, 64), np.float32)  # in a 64 x 64 letterbox of it: content rows 16..47
    masks[0, 16:48, 0:32] = 1  # left half of the picture
    ann = Annotator(im0)
    draw_masks(ann, from_numpy(masks), [(0, 0, 255)], im_gpu=None, alpha=0.5)
    assert (im0[:, 60:] == 100).all()
    np.testing.assert_allclose(im0[25, 20], [50, 50, 177], atol=1)  # 0.5 * red + 0.5 * grey


def test_draw_masks_through_the_network_input():
    im0 = np.zeros((50, 100, 3), np.uint8)
    im_gpu = np.full((3, 64, 64), 0.5, np.float32)  # the letterboxed input, RGB 0-1
    masks = np.zeros((2, 64, 64), np.float32)
    masks[0, 16:48, 0:32] = 1
    masks[1, 16:48, 16:48] = 1
    ann = Annotator(im0)
    draw_masks(ann, from_numpy(masks), [(255, 0, 0), (0, 255, 0)], im_gpu=from_numpy(im_gpu), alpha=0.5)
    # the input replaces the image: 0.5 grey (127) where no mask; first mask over the second where both
    assert abs(int(im0[5, 90, 0]) - 127) <= 1
    np.testing.assert_allclose(im0[25, 10], [191, 63, 63], atol=2)  # blue (BGR) half over grey
    np.testing.assert_allclose(im0[25, 40], [159, 95, 31], atol=2)  # blue over green over grey
    native = np.zeros((64, 64, 3), np.uint8)
    draw_masks(Annotator(native), from_numpy(masks), [(255, 0, 0), (0, 255, 0)], im_gpu=from_numpy(im_gpu),
               retina_masks=True)
    assert native.shape == (64, 64, 3) and to_numpy(from_numpy(native))[20, 5, 0] > 150
