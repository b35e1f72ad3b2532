"""COCO JSON: prediction rows as val.py --save-json writes them, YOLO labels as a COCO annotations file, and the
pycocotools evaluation that ultralytics reports.

Why pycocotools and val.py disagree a little (ultralytics issue 2258), even on the same predictions:
  - matching: val.py pairs labels and predictions greedily by IoU; COCOeval greedily by score;
  - AP: val.py integrates the 101-point interpolated curve with the trapezoid rule; COCOeval averages the 101 sampled
    precisions (each read at the first point reaching that recall);
  - COCOeval's headline numbers keep at most 100 detections per image (val.py keeps max_det = 300);
  - the JSON rounds boxes to 3 decimals and scores to 5.

Usage (a COCO annotations file for any YOLO dataset, so pycocotools can check it):
    python utils/coco.py --data data/synthetic.yaml --task val --out annotations.json
"""

import json
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils import cli, errors  # noqa: E402
from utils.backend import to_numpy  # noqa: E402
from utils.boxes import xyxy2xywh  # noqa: E402
from utils.log import LOGGER  # noqa: E402

_COCO91 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33,
           34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
           62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90)


def coco80_to_coco91_class():
    """COCO category ids (1-90, with gaps) of the 80 YOLO COCO classes, indexed by YOLO class."""
    return list(_COCO91)


def class_map_for(is_coco):
    """YOLO class -> JSON category_id: the COCO ids for COCO, else the class index itself."""
    return coco80_to_coco91_class() if is_coco else list(range(1000))


def image_id(path):
    """JSON image_id of an image file: int(stem) when the stem is a number (COCO), else the stem."""
    stem = Path(path).stem
    return int(stem) if stem.isnumeric() else stem


def prediction_rows(predn, path, class_map):
    """COCO result rows of one image's detections.

    Args:
        predn: (n, 6) [x1, y1, x2, y2, conf, cls] in original-image pixels (tensor or array).
        path: the image file (its stem gives image_id).
        class_map: YOLO class -> category_id.
    Returns:
        list of {"image_id", "category_id", "bbox": [x_left, y_top, w, h] (3 decimals), "score" (5 decimals)}.
    """
    predn = np.asarray(to_numpy(predn))  # float32 from the model, as ultralytics rounds it
    box = xyxy2xywh(predn[:, :4])
    box[:, :2] -= box[:, 2:] / 2  # centre -> top-left corner
    iid = image_id(path)
    return [{"image_id": iid, "category_id": class_map[int(p[5])], "bbox": [round(float(v), 3) for v in b],
             "score": round(float(p[4]), 5)} for p, b in zip(predn.tolist(), box.tolist())]


# ----------------------------------------------------------------------------------------- YOLO labels -> COCO JSON
def yolo_to_coco(im_files, labels, shapes, names, class_map=None):
    """A COCO annotations dict from YOLO labels.

    Args:
        im_files: image paths; their image_id follows image_id().
        labels: per image, (m, 5) [cls, xc, yc, w, h] normalised (a dataset's ``labels``).
        shapes: per image, (width, height) of the original image (a dataset's ``shapes``).
        names: {class index: name}.
        class_map: YOLO class -> category_id (default: identity).
    Returns:
        {"images", "annotations", "categories"}; annotation ids start at 1 (COCOeval treats id 0 as "no match").
    """
    class_map = class_map or list(range(max(len(names), 1000)))
    images, annotations = [], []
    for f, lb, (w, h) in zip(im_files, labels, shapes):
        iid = image_id(f)
        images.append({"id": iid, "file_name": Path(f).name, "width": int(w), "height": int(h)})
        for c, xc, yc, bw, bh in np.asarray(lb, dtype=np.float64).reshape(-1, 5):
            box = [(xc - bw / 2) * w, (yc - bh / 2) * h, bw * w, bh * h]
            annotations.append({"id": len(annotations) + 1, "image_id": iid, "category_id": class_map[int(c)],
                                "bbox": [round(v, 3) for v in box], "area": round(box[2] * box[3], 3),
                                "iscrowd": 0})
    ids = [im["id"] for im in images]
    if len({type(i) for i in ids}) > 1:
        raise ValueError("image file names mix numeric and non-numeric stems: COCO image ids must be all one kind")
    if len(set(ids)) != len(ids):
        raise ValueError("two images share a file stem, so their COCO image ids would collide")
    categories = [{"id": class_map[int(k)], "name": str(v)} for k, v in sorted(dict(names).items())]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_json(d, file):
    """Write ``d`` as JSON to ``file`` (its folder created); returns the Path."""
    Path(file).parent.mkdir(parents=True, exist_ok=True)
    with open(file, "w") as f:
        json.dump(d, f)
    return Path(file)


def write_coco_annotations(dataset, names, file, class_map=None):
    """Write yolo_to_coco() of a LoadImagesAndLabels-like dataset (im_files, labels, shapes) to ``file``."""
    return write_json(yolo_to_coco(dataset.im_files, dataset.labels, dataset.shapes, names, class_map), file)


# ------------------------------------------------------------------------------------------------------- evaluation
def coco_evaluate(anno_json, pred_json, img_ids=None, iou_types=("bbox",)):
    """pycocotools evaluation of each of ``iou_types`` ('bbox', 'segm'), printing COCOeval's summary tables.

    Args:
        anno_json: ground-truth annotations file; pred_json: result rows file (or a list of rows).
        img_ids: restrict to these image ids (ultralytics does this for COCO).
    Returns:
        COCOeval.stats (12 numbers) of the first type, [0] mAP@0.5:0.95 and [1] mAP@0.5; with several types, a list
        of them.
    """
    from pycocotools.coco import COCO  # noqa: PLC0415 (optional dependency)
    from pycocotools.cocoeval import COCOeval  # noqa: PLC0415

    anno = COCO(str(anno_json))
    pred = anno.loadRes(str(pred_json) if isinstance(pred_json, (str, Path)) else pred_json)
    stats = []
    for iou_type in iou_types:
        ev = COCOeval(anno, pred, iou_type)
        if img_ids is not None:
            ev.params.imgIds = list(img_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        stats.append(ev.stats)
    return stats[0] if len(stats) == 1 else stats


def parse_opt(argv=None):
    """Flags: --data (required), --task (split), --out (JSON path), --coco-ids."""
    return cli.parse("utils/coco", argv)


def main(opt):
    from utils.data.build import create_dataloader  # noqa: PLC0415 (data layer only for the CLI)
    from utils.data.dataset_yaml import check_dataset  # noqa: PLC0415

    data = check_dataset(opt.data)
    _, dataset = create_dataloader(data[opt.task], 640, 1, 32, workers=0, prefix=f"{opt.task}: ")
    out = opt.out or Path(data["path"]) / "annotations" / f"{opt.task}.json"
    write_coco_annotations(dataset, data["names"], out, coco80_to_coco91_class() if opt.coco_ids else None)
    LOGGER.info(f"COCO annotations for {len(dataset.im_files)} images written to {out}")
    return out


if __name__ == "__main__":
    with errors.guard():
        main(parse_opt())
