"""Weights & Biases, ClearML and Comet: each is used when its package is installed and set up, never required.

"Set up" means what each tool itself needs to log without asking: W&B an API key (``wandb login``, WANDB_API_KEY) or
WANDB_MODE=offline; ClearML a clearml.conf (``clearml-init``), CLEARML_CONFIG_FILE or CLEARML_API_ACCESS_KEY; Comet
COMET_API_KEY, a ~/.comet.config or COMET_MODE=offline. Each tracker gets the results.csv row of every epoch, the
result images at the end, the hyperparameters and the best weights. A tracker whose call fails is switched off with
one warning: training never stops for a logger.

The wandb-only flags of ultralytics' train.py that this project does not implement (dataset artifacts, bounding-box
tables, the evolve bucket) are named in one warning per process (``warn_unused_flags``), never silently ignored.
"""

import importlib
import os
from pathlib import Path

from utils.log import LOGGER, colorstr

# flag -> (its default, what it would need); --entity acts when W&B is in use
FLAGS = {
    "entity": (None, "Weights & Biases (pip install wandb; wandb login)"),
    "upload_dataset": (False, "W&B dataset artifacts, which one-yolov5 does not implement"),
    "artifact_alias": ("latest", "W&B dataset artifacts, which one-yolov5 does not implement"),
    "bbox_interval": (-1, "W&B bounding-box tables, which one-yolov5 does not implement"),
    "bucket": ("", "gsutil uploads of evolve results, which one-yolov5 does not implement"),
}
_warned = set()


def installed(name):
    """The installed package ``name`` (a real one, with a __version__, not a local folder of that name), or None."""
    try:
        module = importlib.import_module(name)
    except Exception:  # ImportError, or an install broken enough to fail on import: not usable either way
        return None
    return module if hasattr(module, "__version__") else None


def wandb_ready(wandb):
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE", "").lower() in ("offline", "dryrun"):
        return True
    try:
        return bool(wandb.api.api_key)  # what 'wandb login' stored
    except Exception:
        return False


def clearml_ready(clearml):
    return bool(os.environ.get("CLEARML_API_ACCESS_KEY") or os.environ.get("CLEARML_CONFIG_FILE")
                or os.environ.get("CLEARML_OFFLINE_MODE") or Path("~/clearml.conf").expanduser().is_file())


def comet_ready(comet_ml):
    return bool(os.environ.get("COMET_API_KEY") or os.environ.get("COMET_MODE", "").lower() == "offline"
                or Path("~/.comet.config").expanduser().is_file())


def web_project_name(project):
    """The tracker's project for a local --project: YOLOv5 / YOLOv5-Segment / YOLOv5-Classify for the defaults."""
    p = Path(str(project))
    if p.parent.name == "runs" and p.name.startswith("train"):
        return "YOLOv5" + {"train-seg": "-Segment", "train-cls": "-Classify"}.get(p.name, "")
    return p.name or "YOLOv5"


def unused_flags(opt, wandb_active=False):
    """The flags in ``opt`` (a dict) set away from their defaults that do nothing in this run."""
    given = [k for k, (default, _) in FLAGS.items() if k in opt and opt[k] not in (default, None)]
    return [k for k in given if not (k == "entity" and wandb_active)]


def warn_unused_flags(opt, wandb_active=False):
    """One warning naming the flags that do nothing here and why; each flag is named once per process."""
    names = [k for k in unused_flags(opt, wandb_active) if k not in _warned]
    if not names:
        return []
    _warned.update(names)
    reasons = {}
    for k in names:
        reasons.setdefault(FLAGS[k][1], []).append(f"--{k}")
    if len(reasons) == 1:
        why = f"{'it needs' if len(names) == 1 else 'they need'} {next(iter(reasons))}"
    else:
        why = "; ".join(f"{', '.join(flags)} need{'s' if len(flags) == 1 else ''} {r}" for r, flags in reasons.items())
    LOGGER.warning(f"WARNING ⚠️ {', '.join('--' + k for k in names)} {'does' if len(names) == 1 else 'do'} nothing "
                   f"in this run: {why}")
    return names


class Remote:
    """One tracker. Every call goes through ``_call``: the first failure switches the tracker off with a warning."""

    name = ""

    def __init__(self):
        self.active = True

    def _call(self, what, fn, *args, **kwargs):
        if not self.active:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            self.active = False
            LOGGER.warning(f"WARNING ⚠️ {self.name}: {what} failed ({type(e).__name__}: {e}); it logs nothing more")
            return None

    def log_metrics(self, metrics, epoch):
        pass

    def log_images(self, files, name, epoch):
        pass

    def log_model(self, path, epoch, metadata=None):
        pass

    def update_params(self, params):
        pass

    def finish(self):
        pass


class WandbRemote(Remote):
    name = "Weights & Biases"

    def __init__(self, wandb, opt, hyp):
        super().__init__()
        self.wandb = wandb
        name = opt.get("name")
        self.run = wandb.init(project=web_project_name(opt.get("project", "")), entity=opt.get("entity"),
                              name=None if name in (None, "exp") else name, config={**opt, "hyp": hyp},
                              job_type="Training", allow_val_change=True)

    def log_metrics(self, metrics, epoch):
        self._call("log", self.run.log, dict(metrics), step=int(epoch))

    def log_images(self, files, name, epoch):
        images = [self.wandb.Image(str(f), caption=Path(f).name) for f in files]
        self._call("log images", self.run.log, {name: images}, step=int(epoch))

    def log_model(self, path, epoch, metadata=None):
        def upload():
            art = self.wandb.Artifact(name=f"run_{self.run.id}_model", type="model", metadata=metadata or {})
            art.add_file(str(path))
            self.run.log_artifact(art, aliases=["latest", f"epoch {epoch}"])

        self._call("model upload", upload)

    def update_params(self, params):
        self._call("config update", self.run.config.update, dict(params), allow_val_change=True)

    def finish(self):
        self._call("finish", self.run.finish)
        self.active = False


class ClearmlRemote(Remote):
    name = "ClearML"

    def __init__(self, clearml, opt, hyp):
        super().__init__()
        name = opt.get("name")
        self.task = clearml.Task.init(project_name=web_project_name(opt.get("project", "")),
                                      task_name="Training" if name in (None, "exp") else name, tags=["YOLOv5"],
                                      output_uri=True, reuse_last_task_id=False, auto_connect_frameworks=False)
        self.task.connect(dict(hyp), name="Hyperparameters")
        self.task.connect(dict(opt), name="Args")

    def log_metrics(self, metrics, epoch):
        logger = self.task.get_logger()
        for k, v in metrics.items():
            title, series = k.split("/", 1) if "/" in k else (k, k)
            self._call("report_scalar", logger.report_scalar, title, series, float(v), int(epoch))

    def log_images(self, files, name, epoch):
        logger = self.task.get_logger()
        for f in files:
            self._call("report_image", logger.report_image, title=name, series=Path(f).name, iteration=int(epoch),
                       local_path=str(f))

    def log_model(self, path, epoch, metadata=None):
        self._call("model upload", self.task.update_output_model, model_path=str(path), name="Best Model",
                   auto_delete_file=False)

    def update_params(self, params):
        self._call("connect", self.task.connect, dict(params), name="Params")

    def finish(self):
        self._call("close", self.task.close)
        self.active = False


class CometRemote(Remote):
    name = "Comet"

    def __init__(self, comet_ml, opt, hyp):
        super().__init__()
        project = os.environ.get("COMET_PROJECT_NAME") or web_project_name(opt.get("project", ""))
        offline = os.environ.get("COMET_MODE", "").lower() == "offline"
        self.exp = (comet_ml.OfflineExperiment if offline else comet_ml.Experiment)(project_name=project)
        self.exp.log_parameters(dict(hyp))
        self.exp.log_others({f"opt/{k}": str(v) for k, v in opt.items()})

    def log_metrics(self, metrics, epoch):
        self._call("log_metrics", self.exp.log_metrics, dict(metrics), epoch=int(epoch))

    def log_images(self, files, name, epoch):
        for f in files:
            self._call("log_image", self.exp.log_image, str(f), name=Path(f).name, step=int(epoch))

    def log_model(self, path, epoch, metadata=None):
        self._call("log_model", self.exp.log_model, "yolov5", str(path), file_name=Path(path).name, overwrite=True)

    def update_params(self, params):
        self._call("log_parameters", self.exp.log_parameters, dict(params))

    def finish(self):
        self._call("end", self.exp.end)
        self.active = False


TRACKERS = {  # include-name -> (package, is it set up, class, how to set it up)
    "wandb": ("wandb", wandb_ready, WandbRemote, "wandb login"),
    "clearml": ("clearml", clearml_ready, ClearmlRemote, "clearml-init"),
    "comet": ("comet_ml", comet_ready, CometRemote, "export COMET_API_KEY=..."),
}


def start(opt, hyp, include=tuple(TRACKERS)):
    """The trackers of ``include`` that are installed and set up, started for this run (rank 0 only)."""
    out = []
    for key in include:
        if key not in TRACKERS:
            continue
        package, ready, cls, how = TRACKERS[key]
        module = installed(package)
        if module is None:
            continue
        prefix = colorstr(f"{cls.name}: ")
        if not ready(module):
            LOGGER.info(f"{prefix}installed but not set up ('{how}'): not used in this run")
            continue
        try:
            out.append(cls(module, opt, hyp))
            LOGGER.info(f"{prefix}logging this run (project {web_project_name(opt.get('project', ''))})")
        except Exception as e:
            LOGGER.warning(f"WARNING ⚠️ {cls.name}: could not start ({type(e).__name__}: {e}); not used in this run")
    return out


def wandb_active(include=("wandb",)):
    """Whether a W&B run would start (installed and set up), without starting one."""
    if "wandb" not in include:
        return False
    module = installed("wandb")
    return module is not None and wandb_ready(module)
