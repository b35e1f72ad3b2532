"""Known datasets (utils/data/zoo.py, data/*.yaml): the YAML facts, each converter on hand-made raw files with label
numbers computed by hand, and the fetch -> extract -> convert flow of check_dataset on local archives (file:// URLs;
no network)."""

import json
import random
import re
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from tests.conftest import ROOT
from utils.data import zoo
from utils.data.dataset_yaml import DONE_FILE, check_dataset
from utils.downloads import DownloadError
from utils.errors import DatasetError, DatasetYAMLError, UserError


def _image(file, w=40, h=30):
    file.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(file), np.full((h, w, 3), 127, np.uint8))
    return file


def _rows(file):
    return [[float(v) for v in line.split()] for line in Path(file).read_text().splitlines()]


def _close(rows, expected):
    assert len(rows) == len(expected), rows
    for r, e in zip(rows, expected):
        assert r[0] == e[0] and np.allclose(r[1:], e[1:], atol=1e-6), (r, e)


def _tar(src, archive):
    with tarfile.open(archive, "w:gz") as t:
        for p in sorted(src.iterdir()):
            t.add(p, arcname=p.name)
    return archive


def _zip(src, archive):
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(src.rglob("*")):
            z.write(p, p.relative_to(src))
    return archive


def _names(name):
    return list(yaml.safe_load((ROOT / "data" / f"{name}.yaml").read_text())["names"].values())


# --------------------------------------------------------------------------------------------------- YAML facts
@pytest.mark.parametrize("name, folder, nc, first, last, url", [
    ("VOC", "VOC", 20, "aeroplane", "tvmonitor", "https://github.com/ultralytics/yolov5/releases/download/v1.0/"
                                                 "VOCtrainval_06-Nov-2007.zip"),
    ("VisDrone", "VisDrone", 10, "pedestrian", "motor", "https://github.com/ultralytics/yolov5/releases/download/"
                                                        "v1.0/VisDrone2019-DET-train.zip"),
    ("GlobalWheat2020", "GlobalWheat2020", 1, "wheat_head", "wheat_head",
     "https://zenodo.org/record/4298502/files/global-wheat-codalab-official.zip"),
    ("SKU-110K", "SKU-110K", 1, "object", "object",
     "http://trax-geometry.s3.amazonaws.com/cvpr_challenge/SKU110K_fixed.tar.gz"),
    ("Argoverse", "Argoverse", 8, "person", "stop_sign",
     "https://argoverse-hd.s3.us-east-2.amazonaws.com/Argoverse-HD-Full.zip"),
    ("Objects365", "Objects365", 365, "Person", "Table Tennis",
     "https://dorc.ks3-cn-beijing.ksyun.com/data-set/2020Objects365%E6%95%B0%E6%8D%AE%E9%9B%86/train/"
     "zhiyuan_objv2_train.tar.gz"),
    ("xView", "xView", 60, "Fixed-wing Aircraft", "Tower", None),
    ("ImageNet", "imagenet", 1000, "tench", "toilet paper", None),
])
def test_known_dataset_yamls(name, folder, nc, first, last, url):
    d = yaml.safe_load((ROOT / "data" / f"{name}.yaml").read_text())
    assert d["path"] == f"../datasets/{folder}" and d["convert"] == name and name in zoo.DATASETS
    names = d["names"]
    assert list(names) == list(range(nc)) and names[0] == first and names[nc - 1] == last
    assert all(isinstance(v, str) for v in names.values())
    download = d.get("download")
    if url is None:
        assert download is None and zoo.DATASETS[name].manual  # by hand only: the error says how
    else:
        entry = download if isinstance(download, str) else download[0]
        assert (entry if isinstance(entry, str) else entry["url"]) == url


def test_yaml_facts_in_detail():
    voc = yaml.safe_load((ROOT / "data/VOC.yaml").read_text())
    assert voc["train"] == ["images/train2012", "images/train2007", "images/val2012", "images/val2007"]
    assert voc["val"] == voc["test"] == ["images/test2007"] and voc["names"][14] == "person"
    assert [e["dir"] for e in voc["download"]] == ["images"] * 3
    assert _names("VisDrone")[7] == "awning-tricycle" and _names("xView")[11] == "Truck w/Box"
    assert _names("Argoverse")[6] == "traffic_light" and _names("ImageNet")[607] == "jack-o'-lantern"
    o365 = yaml.safe_load((ROOT / "data/Objects365.yaml").read_text())
    urls = [e["url"] for e in o365["download"]]
    assert len(urls) == 1 + 51 + 1 + 44 and urls[51].endswith("/train/patch50.tar.gz")
    assert urls[52].endswith("/val/zhiyuan_objv2_val.json") and urls[-1].endswith("/val/images/v2/patch43.tar.gz")
    assert o365["names"][12] == "Cabinet/shelf"
    wheat = yaml.safe_load((ROOT / "data/GlobalWheat2020.yaml").read_text())
    assert wheat["val"] == ["images/ethz_1"] and len(wheat["train"]) == 7 and len(wheat["test"]) == 4
    xview = yaml.safe_load((ROOT / "data/xView.yaml").read_text())
    assert (xview["train"], xview["val"]) == ("images/autosplit_train.txt", "images/autosplit_val.txt")
    assert len(zoo.XVIEW_CLASSES) == 95 and sorted(c for c in zoo.XVIEW_CLASSES if c >= 0) == list(range(60))


@pytest.mark.parametrize("name", ["VOC", "xView", "ImageNet", "Objects365"])
def test_offline_without_autodownload_is_one_clear_error(name):
    path = ROOT / yaml.safe_load((ROOT / "data" / f"{name}.yaml").read_text())["path"]
    if path.exists():
        pytest.skip(f"{path} exists here")
    with pytest.raises(DatasetError, match=re.escape(str(path.resolve()))) as e:
        check_dataset(f"{name}.yaml", autodownload=False)
    assert isinstance(e.value, UserError) and not path.exists()  # nothing fetched, nothing created


# ----------------------------------------------------------------------------------------------------------- VOC
def _voc_xml(w, h, objects):
    objs = "".join(f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}"
                   f"</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, d, b in objects)
    return f"<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objs}</annotation>"


def test_voc_labels_by_hand():
    xml = _voc_xml(500, 400, [("dog", 0, (48, 240, 196, 372)), ("person", 1, (8, 12, 352, 498)),
                              ("unicorn", 0, (1, 1, 10, 10)), ("car", 0, (101, 51, 201, 151))])
    # dog (11): xc = ((48 + 196) / 2 - 1) / 500 = 0.242, yc = ((240 + 372) / 2 - 1) / 400 = 0.7625,
    #     w = 148 / 500 = 0.296, h = 132 / 400 = 0.33
    # car: xc = (151 - 1) / 500 = 0.3, yc = (101 - 1) / 400 = 0.25, w = 0.2, h = 0.25; difficult and unknown: left out
    _close(zoo.voc_labels(xml, _names("VOC")), [(11, 0.242, 0.7625, 0.296, 0.33), (6, 0.3, 0.25, 0.2, 0.25)])


def _voc_devkit(root):
    """VOCdevkit with one image per set; image ids <set><year>."""
    for year, image_set in zoo.VOC_SETS:
        voc, i = root / "VOCdevkit" / f"VOC{year}", f"{image_set}{year}"
        main = voc / "ImageSets" / "Main"
        main.mkdir(parents=True, exist_ok=True)
        (main / f"{image_set}.txt").write_text(f"{i}\n")
        _image(voc / "JPEGImages" / f"{i}.jpg", 50, 40)
        (voc / "Annotations").mkdir(exist_ok=True)
        (voc / "Annotations" / f"{i}.xml").write_text(_voc_xml(50, 40, [("cat", 0, (6, 11, 26, 31))]))
    return root


def _known_yaml(tmp_path, name, path, download, **keys):
    d = dict(path=str(path), train=keys.pop("train", "images"), val=keys.pop("val", "images"), names=_names(name),
             download=download, convert=name, **keys)
    f = tmp_path / f"{name}.yaml"
    f.write_text(yaml.safe_dump(d, sort_keys=False))
    return f


def test_voc_download_extract_convert(tmp_path):
    archive = _tar(_voc_devkit(tmp_path / "raw"), tmp_path / "VOCtest.tar.gz")
    path = tmp_path / "datasets" / "VOC"
    f = _known_yaml(tmp_path, "VOC", path, [{"url": archive.as_uri(), "dir": "images"}],
                    train=["images/train2012", "images/train2007", "images/val2012", "images/val2007"],
                    val=["images/test2007"])
    d = check_dataset(f)
    for year, image_set in zoo.VOC_SETS:
        i = f"{image_set}{year}"
        assert (path / "images" / i / f"{i}.jpg").is_file()
        # cat (class 7): xc = ((6 + 26) / 2 - 1) / 50 = 0.3, yc = ((11 + 31) / 2 - 1) / 40 = 0.5, w = 0.4, h = 0.5
        _close(_rows(path / "labels" / i / f"{i}.txt"), [(7, 0.3, 0.5, 0.4, 0.5)])
    assert d["val"] == [str(path / "images" / "test2007")] and d["nc"] == 20
    assert not (path / "images" / archive.name).exists()  # extracted, then removed
    assert (path / DONE_FILE).read_text().split() == [archive.as_uri()]


def test_voc_offline_then_archive_saved_by_hand(tmp_path):
    """Offline: one DownloadError saying where to save the file; once it is there, no network is needed."""
    path = tmp_path / "datasets" / "VOC"
    url = "http://127.0.0.1:9/VOCtest.tar.gz"
    f = _known_yaml(tmp_path, "VOC", path, [{"url": url, "dir": "images"}], val=["images/test2007"])
    target = path / "images" / "VOCtest.tar.gz"
    with pytest.raises(DownloadError, match="save it as " + re.escape(str(target))) as e:
        check_dataset(f)
    assert isinstance(e.value, UserError) and "\n" not in str(e.value)
    with pytest.raises(DatasetError, match="automatic download off.*" + re.escape(str(target))):
        check_dataset(f, autodownload=False)
    _tar(_voc_devkit(tmp_path / "raw"), target)
    assert check_dataset(f, autodownload=False)["val"] == [str(path / "images" / "test2007")]


# ------------------------------------------------------------------------------------------------------ VisDrone
def test_visdrone_labels_by_hand():
    text = "10,20,30,10,1,4,0,0\n0,0,5,5,0,0,0,0\n1,1,4,4,1,11,0,0\n50,25,50,25,1,1,1,2\n"
    # car (category 4 -> 3): xc = (10 + 15) / 100, yc = (20 + 5) / 50, w = 30 / 100, h = 10 / 50
    # pedestrian (1 -> 0): xc = (50 + 25) / 100, yc = (25 + 12.5) / 50, w = 0.5, h = 0.5; score 0 and 'others' out
    _close(zoo.visdrone_labels(text, 100, 50), [(3, 0.25, 0.5, 0.3, 0.2), (0, 0.75, 0.75, 0.5, 0.5)])


def test_visdrone_from_zip(tmp_path):
    raw = tmp_path / "raw"
    for split in zoo.VISDRONE_SPLITS:
        _image(raw / split / "images" / "0001.jpg", 100, 50)
        (raw / split / "annotations").mkdir(parents=True)
        (raw / split / "annotations" / "0001.txt").write_text("10,20,30,10,1,4,0,0\n")
    archive = _zip(raw, tmp_path / "VisDrone.zip")
    path = tmp_path / "VisDrone"
    f = _known_yaml(tmp_path, "VisDrone", path, [{"url": archive.as_uri(), "dir": "."}],
                    train="VisDrone2019-DET-train/images", val="VisDrone2019-DET-val/images")
    check_dataset(f)
    for split in zoo.VISDRONE_SPLITS:
        _close(_rows(path / split / "labels" / "0001.txt"), [(3, 0.25, 0.5, 0.3, 0.2)])


# ---------------------------------------------------------------------------------------------- GlobalWheat2020
def test_globalwheat_layout(tmp_path):
    for domain in zoo.GLOBALWHEAT_DOMAINS:
        _image(tmp_path / domain / "a.png")
        (tmp_path / f"{domain}.json").write_text("{}")
    zoo.globalwheat2yolo(tmp_path, ["wheat_head"])
    for domain in zoo.GLOBALWHEAT_DOMAINS:
        assert (tmp_path / "images" / domain / "a.png").is_file() and not (tmp_path / domain).exists()
        assert (tmp_path / "annotations" / f"{domain}.json").is_file()
    zoo.globalwheat2yolo(tmp_path, ["wheat_head"])  # a second run finds everything in place


# ------------------------------------------------------------------------------------------------------ SKU-110K
def test_sku_labels_and_layout(tmp_path):
    # a.jpg: xc = (10 + 50) / 2 / 100 = 0.3, yc = (20 + 60) / 2 / 200 = 0.2, w = 40 / 100, h = 40 / 200
    assert zoo.sku_labels([["a.jpg", "10", "20", "50", "60", "object", "100", "200"], []]) == {
        "a.jpg": [(0, 0.3, 0.2, 0.4, 0.2)]}
    raw = tmp_path / "SKU110K_fixed"
    (raw / "annotations").mkdir(parents=True)
    for split, im in ("train", "train_1.jpg"), ("val", "val_1.jpg"), ("test", "test_1.jpg"):
        _image(raw / "images" / im)
        (raw / "annotations" / f"annotations_{split}.csv").write_text(
            f"{im},10,20,50,60,object,100,200\n{im},0,0,100,200,object,100,200\n")
    path = tmp_path / "SKU-110K"
    zoo.sku2yolo(path, ["object"])
    assert not raw.exists() and (path / "images" / "val_1.jpg").is_file()
    assert (path / "val.txt").read_text() == "./images/val_1.jpg\n"
    assert (path / "labels" / "val_1.txt").read_text() == "0 0.30000 0.20000 0.40000 0.20000\n0 0.50000 0.50000 " \
                                                          "1.00000 1.00000\n"


# ----------------------------------------------------------------------------------------------------- Argoverse
def _argoverse_json(seq="train/seq1/ring_front_center"):
    return {"images": [{"id": 0, "name": "r_1.jpg", "sid": 0}, {"id": 1, "name": "r_2.jpg", "sid": 0}],
            "seq_dirs": [seq],
            "annotations": [{"image_id": 1, "bbox": [960, 600, 192, 120], "category_id": 2},
                            {"image_id": 1, "bbox": [0, 0, 1920, 1200], "category_id": 7}]}


def test_argoverse_labels_by_hand():
    # car: xc = (960 + 96) / 1920 = 0.55, yc = (600 + 60) / 1200 = 0.55, w = 192 / 1920, h = 120 / 1200
    labels = zoo.argoverse_labels(_argoverse_json())
    assert list(labels) == [Path("train/seq1/ring_front_center/r_2.txt")]
    _close(list(labels.values())[0], [(2, 0.55, 0.55, 0.1, 0.1), (7, 0.5, 0.5, 1.0, 1.0)])


def test_argoverse_layout_and_escape(tmp_path):
    _image(tmp_path / "Argoverse-1.1" / "tracking" / "train" / "seq1" / "ring_front_center" / "r_2.jpg")
    (tmp_path / "Argoverse-HD" / "annotations").mkdir(parents=True)
    for split in "train", "val":
        (tmp_path / "Argoverse-HD" / "annotations" / f"{split}.json").write_text(json.dumps(_argoverse_json()))
    zoo.argoverse2yolo(tmp_path, _names("Argoverse"))
    assert (tmp_path / "Argoverse-1.1" / "images" / "train" / "seq1" / "ring_front_center" / "r_2.jpg").is_file()
    _close(_rows(tmp_path / "Argoverse-1.1" / "labels" / "train" / "seq1" / "ring_front_center" / "r_2.txt"),
           [(2, 0.55, 0.55, 0.1, 0.1), (7, 0.5, 0.5, 1.0, 1.0)])
    (tmp_path / "Argoverse-HD" / "annotations" / "train.json").write_text(json.dumps(_argoverse_json("../../../x")))
    with pytest.raises(DatasetError, match="outside"):
        zoo.argoverse2yolo(tmp_path, _names("Argoverse"))
    assert not (tmp_path.parent / "x").exists()


# --------------------------------------------------------------------------------------------------------- xView
def _feature(image_id, bounds, type_id):
    return {"properties": {"image_id": image_id, "bounds_imcoords": bounds, "type_id": type_id}}


def test_xview_labels_by_hand():
    features = [_feature("1.tif", "10,20,110,70", 11), _feature("1.tif", "150,50,250,150", 13),
                _feature("1.tif", "1,1,5,5", 14), _feature("1.tif", "1,1,5", 11), _feature("1395.tif", "1,1,5,5", 11),
                _feature("1.tif", "", 11)]
    labels = zoo.xview_labels(features, lambda i: (200, 100) if i == "1.tif" else None)
    # type 11 -> 0: xc = 60 / 200, yc = 45 / 100, w = 100 / 200, h = 50 / 100
    # type 13 -> 2, clipped to (200, 100): xc = 175 / 200, yc = 75 / 100, w = 50 / 200, h = 50 / 100
    # type 14 (no class), a 3-number box, an image that is not there, no box: left out
    assert list(labels) == ["1.tif"]
    _close(labels["1.tif"], [(0, 0.3, 0.45, 0.5, 0.5), (2, 0.875, 0.75, 0.25, 0.5)])


def test_xview_by_hand_layout_and_autosplit(tmp_path):
    path = tmp_path / "xView"
    ids = [f"{i}.tif" for i in range(20)]
    for i in ids:
        _image(path / "train_images" / i, 200, 100)
    _image(path / "val_images" / "v.tif")
    (path / "xView_train.geojson").write_text(json.dumps({"features": [_feature(i, "10,20,110,70", 11)
                                                                        for i in ids]}))
    f = tmp_path / "xView.yaml"
    f.write_text(yaml.safe_dump(dict(path=str(path), train="images/autosplit_train.txt",
                                     val="images/autosplit_val.txt", names=_names("xView"), convert="xView")))
    d = check_dataset(f, autodownload=False)  # raw files put there by hand: converted, nothing fetched
    assert (path / "images" / "val" / "v.tif").is_file() and not (path / "train_images").exists()
    _close(_rows(path / "labels" / "train" / "7.txt"), [(0, 0.3, 0.45, 0.5, 0.5)])
    # the draw of ultralytics' autosplit: random.seed(0); random.choices([0, 1, 2], weights=(0.9, 0.1, 0.0), k=n)
    picks = random.Random(0).choices([0, 1, 2], weights=(0.9, 0.1, 0.0), k=20)
    assert picks.count(1) > 0 and picks.count(2) == 0 and not (path / "images" / "autosplit_test.txt").exists()
    files = sorted(ids)
    expected_val = [f"./train/{f}" for f, p in zip(files, picks) if p == 1]
    assert Path(d["val"]).read_text().splitlines() == expected_val
    assert len(Path(d["train"]).read_text().splitlines()) == 20 - len(expected_val)


# ---------------------------------------------------------------------------------------------------- Objects365
def _o365_json():
    return {"categories": [{"id": 5, "name": "Person"}, {"id": 2, "name": "Sneakers"}],
            "images": [{"id": 7, "file_name": "images/v1/patch0/objects365_v1_7.jpg", "width": 200, "height": 100}],
            "annotations": [{"image_id": 7, "bbox": [10, 20, 100, 50], "category_id": 2, "iscrowd": 0},
                            {"image_id": 7, "bbox": [150, 50, 100, 100], "category_id": 5, "iscrowd": 1}]}


def test_objects365_labels_by_hand():
    # Sneakers (2nd category -> 1): xc = (10 + 110) / 2 / 200 = 0.3, yc = (20 + 70) / 2 / 100 = 0.45, w = h = 0.5
    # Person (1st -> 0), clipped to (200, 100): xc = 175 / 200, yc = 75 / 100, w = 50 / 200, h = 0.5; ordered by class
    labels = zoo.objects365_labels(_o365_json())
    assert list(labels) == ["objects365_v1_7"]
    _close(labels["objects365_v1_7"], [(0, 0.875, 0.75, 0.25, 0.5), (1, 0.3, 0.45, 0.5, 0.5)])
    assert zoo.objects365_labels(dict(_o365_json(), annotations=[])) == {}


def test_objects365_layout(tmp_path):
    for split in "train", "val":
        _image(tmp_path / "images" / split / "v1" / "patch0" / "objects365_v1_7.jpg", 200, 100)
        (tmp_path / f"zhiyuan_objv2_{split}.json").write_text(json.dumps(_o365_json()))
    zoo.objects365_2yolo(tmp_path, _names("Objects365"))
    for split in "train", "val":
        assert (tmp_path / "images" / split / "objects365_v1_7.jpg").is_file()
        assert (tmp_path / "labels" / split / "objects365_v1_7.txt").read_text() == \
            "0 0.87500 0.75000 0.25000 0.50000\n1 0.30000 0.45000 0.50000 0.50000\n"


# --------------------------------------------------------------------------------------------------------- table
def test_unknown_convert_name_is_refused(tmp_path):
    f = tmp_path / "odd.yaml"
    f.write_text(yaml.safe_dump(dict(path=str(tmp_path / "x"), train="i", val="i", names=["a"], convert="Nope")))
    with pytest.raises(DatasetYAMLError, match=f"{f.name}: 'convert: Nope'.*VOC") as e:
        check_dataset(f)
    assert isinstance(e.value, ValueError)


def test_autosplit_keeps_its_ultralytics_import_path(tmp_path):
    from utils.dataloaders import autosplit  # noqa: PLC0415

    for i in range(5):
        _image(tmp_path / "images" / f"{i}.jpg")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "3.txt").write_text("")
    autosplit(tmp_path / "images", weights=(1.0, 0.0, 0.0), annotated_only=True)  # only images with a label file
    assert (tmp_path / "autosplit_train.txt").read_text() == "./images/3.jpg\n"
    assert not (tmp_path / "autosplit_val.txt").exists()


def test_every_zoo_entry_has_a_yaml():
    for name in zoo.DATASETS:
        assert yaml.safe_load((ROOT / "data" / f"{name}.yaml").read_text())["convert"] == name
