"""The three task tables (models/yolo.py, utils/cli.py, utils/engine/tasks.py) agree, and every task in them has its
classes and its scripts: adding a task is one row in each table plus its modules."""

import importlib

import pytest

from tests.conftest import ROOT


def _tables():
    from models.yolo import TASKS as MODEL_TASKS
    from utils import cli
    from utils.data.synthetic import DATASETS
    from utils.engine.tasks import TASKS as ENGINE_TASKS

    return MODEL_TASKS, cli.TASKS, ENGINE_TASKS, DATASETS


def test_the_tables_name_the_same_tasks():
    models, scripts, engine, data = _tables()
    assert list(models) == list(scripts) == list(engine) == list(data) == ["detect", "segment", "classify"]


@pytest.mark.parametrize("task", ["detect", "segment", "classify"])
def test_every_task_has_its_classes_and_scripts(task):
    from models.yolo import model_class_for, model_task
    from utils import cli
    from utils.engine.predictor import Predictor
    from utils.engine.trainer import BaseTrainer
    from utils.engine.validator import Validator

    models, scripts, engine, _ = _tables()
    row, names = engine[task], scripts[task]
    assert row.scripts is names  # the engine's scripts are the command line's row
    for role, base in {"trainer": BaseTrainer, "validator": Validator, "predictor": Predictor}.items():
        cls = getattr(row, role)
        assert issubclass(cls, base) and cls.task == task, (role, cls)
    for role in ("train", "val", "predict"):
        script = getattr(names, role)
        assert (ROOT / names.file(role)).is_file() and script in cli.SCRIPTS
        module = importlib.import_module(script.replace("/", "."))
        assert callable(module.parse_opt) and callable(module.main) and callable(module.run)
        folder = names.run_folder(role)
        assert folder.parent.name == "runs" and folder.name.startswith({"train": "train", "val": "val",
                                                                         "predict": ("predict", "detect")}[role])
    m = models[task]
    assert m.model.__name__.endswith("Model") and m.head.__name__ and m.head.outputs
    if task != "classify":  # the YOLO YAMLs name their head; classifiers are cut from a detection YAML
        assert model_class_for({"head": [[-1, 1, m.head.__name__, []]]}) is m.model
    assert model_task(object.__new__(m.model)) == task


def test_model_task_refuses_a_module_of_no_task():
    from models.yolo import model_task
    from utils.backend import nn

    with pytest.raises(ValueError, match="not a YOLOv5 model"):
        model_task(nn.Linear(2, 2))


def test_run_folders_come_from_the_scripts_flags():
    from utils import cli

    assert cli.TASKS["segment"].run_folder("train") == ROOT / "runs/train-seg"
    assert cli.TASKS["classify"].run_folder("predict") == ROOT / "runs/predict-cls"
    assert cli.TASKS["detect"].run_folder("predict") == ROOT / "runs/detect"
