"""A malformed dataset YAML is a user error: one DatasetYAMLError naming the file and the key (an ``ERROR:`` line
from the scripts' guard), never a TypeError or a bare ValueError from deep inside."""

import re

import pytest
import yaml

from utils import errors
from utils.data.dataset_yaml import check_dataset
from utils.errors import DatasetYAMLError, InputError, UserError


_DROP = object()  # a key left out of the YAML


def _yaml(tmp_path, name="bad.yaml", **keys):
    data = dict(path=str(tmp_path), train="images", val="images", names=["a", "b"])
    data.update(keys)
    f = tmp_path / name
    f.write_text(yaml.safe_dump({k: v for k, v in data.items() if v is not _DROP}, sort_keys=False))
    return f


@pytest.mark.parametrize("keys, key_text", [
    (dict(train=3), "'train: 3'"),
    (dict(val={"images": "x"}), "'val: {'images': 'x'}'"),
    (dict(train=["images", 7]), "'train: ['images', 7]'"),
    (dict(test=True), "'test: True'"),
    (dict(val=_DROP), "'val:' field missing"),
    (dict(names=_DROP), "'names:' field missing"),
    (dict(names=5), "'names:' must be a list or a dict"),
    (dict(names={"x": "a"}), "'names:' must be a list or a dict"),
    (dict(nc=3), "nc=3 but 2 names"),
    (dict(nc="two"), "'nc: 'two''"),
    (dict(path=3), "'path: 3'"),
    (dict(generate=5), "'generate:' must be a mapping"),
])
def test_malformed_keys_name_the_file_and_the_key(tmp_path, keys, key_text):
    f = _yaml(tmp_path, **keys)
    with pytest.raises(DatasetYAMLError) as e:
        check_dataset(f, autodownload=False)
    message = str(e.value)
    assert message.startswith(f"{f}: ") and key_text in message, message
    # one hierarchy, the old base kept: callers catching ValueError still work
    assert isinstance(e.value, UserError) and isinstance(e.value, InputError) and isinstance(e.value, ValueError)


def test_a_yaml_that_is_not_a_mapping(tmp_path):
    f = tmp_path / "list.yaml"
    f.write_text("- images\n- names\n")
    with pytest.raises(DatasetYAMLError, match=re.escape(f"{f}: a dataset YAML is a mapping") + ".*not a list"):
        check_dataset(f)


def test_dict_input_is_named_in_messages():
    with pytest.raises(DatasetYAMLError, match="the dataset dict: 'train: 3'"):
        check_dataset(dict(path="x", train=3, val="v", names=["a"]))


def test_scripts_print_one_error_line(tmp_path, capsys, monkeypatch):
    f = _yaml(tmp_path, train={"a": 1})
    monkeypatch.setenv(errors.TRACEBACK_ENV, "")
    with pytest.raises(SystemExit) as e, errors.guard():
        check_dataset(f)
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"ERROR: {f}: 'train: {{'a': 1}}' must be a folder of images")


def test_valid_splits_still_pass(tmp_path):
    (tmp_path / "images").mkdir()
    d = check_dataset(_yaml(tmp_path, train=["images"], test=None, nc=2))
    assert d["train"] == [str(tmp_path / "images")] and d["val"] == str(tmp_path / "images") and d["nc"] == 2
