"""Image classification on the shared engine: ultralytics YOLOv5 v7.0's classify/train.py, val.py and predict.py.

What differs from detection, as ultralytics does it: a class-folder dataset (train/ + val/ or test/), the model from
a -cls checkpoint, a detection checkpoint or YAML cut at ``--cutoff`` into a Classify head, or a torchvision /
flowvision model name; Adam at ``--lr0`` with momentum 0.9 and ``--decay`` (no nominal-batch scaling, no warmup, no
accumulation); a linear schedule to 0.01 x lr0; cross entropy with label smoothing; validation of the EMA model at the
end of every epoch with top-1 accuracy as fitness; results.csv columns train/loss, <val>/loss, top-1, top-5, lr/0 (the
learning rate of the next epoch, logged after the scheduler step); image grids train_images.jpg and test_images.jpg.
"""

import os
import time
from pathlib import Path

from models.experimental import attempt_load, is_checkpoint_path
from models.yolo import ClassificationModel, DetectionModel, model_task, reshape_classifier_output
from utils.annotator import Annotator
from utils.backend import F, cuda_memory_reserved_gb, from_numpy, is_tensor, nn, to_numpy
from utils.backend import vision
from utils.classify.dataset import check_classify_dataset, create_classification_dataloader, split_dirs
from utils.classify.loss import classification_loss
from utils.classify.metrics import (RESULTS_CSV_WIDTH, ClassifyMetrics, train_description, train_header,
                                    val_action, val_description, val_result_description, verbose_lines)
from utils.classify.plots import imshow_cls, plot_cls_results
from utils.classify.transforms import classify_transforms
from utils.data.batch import Batch
from utils import cli
from utils.cli import check_img_size, options
from utils.engine.config import ClassifyValConfig
from utils.engine.predictor import Predictor
from utils.engine.trainer import BaseTrainer
from utils.engine.validator import Validator, load_weights
from utils.errors import FlagError
from utils.log import LOGGER, colorstr
from utils.loggers import LogPlan
from utils.model_tools import model_info

LRF = 0.01  # final learning rate, a fraction of --lr0 (ultralytics' fixed value)


# ----------------------------------------------------------------------------------------------------- validation
class ClassificationValidator(Validator):
    """classify/val.py: top-1 / top-5 accuracy and the mean batch loss of the criterion."""

    task, script = "classify", "classify/val.py"
    loss_count = 1
    init_args = ("dataloader", "compute_loss", "pbar")
    run_args = {"criterion": "compute_loss"}  # classify/val.run()'s name
    speed_names = ("pre-process", "inference", "post-process")

    def __init__(self, cfg, dataloader=None, save_dir=None, plots=False, callbacks=None, compute_loss=None, pbar=None):
        super().__init__(cfg, dataloader, save_dir, plots, callbacks, compute_loss)
        self.pbar = pbar  # the trainer's progress bar: validation writes its results into it

    def load_data(self):
        _, evaluation = split_dirs(self.cfg.data)
        return {"val": evaluation}

    def setup(self, model):
        self.imgsz, self.batch_size = self.cfg.imgsz, self.cfg.batch_size
        super().setup(model)

    def load_model(self):
        cfg = self.cfg
        model, stride, names, pt = load_weights(cfg.weights, self.device, self.task, self.script, self.half, cfg.dnn)
        self.imgsz = check_img_size(cfg.imgsz, s=stride)
        if not (pt or getattr(model, "jit", False)):
            self.batch_size = 1  # exported files run one image at a time, as ultralytics
            LOGGER.info(f"Forcing --batch-size 1 square inference (1,3,{self.imgsz},{self.imgsz}) for non-PyTorch "
                        f"models")
        return model, stride, names, pt

    def build_dataloader(self):
        return create_classification_dataloader(self.data["val"], self.imgsz, self.batch_size, augment=False, rank=-1,
                                                workers=self.cfg.workers)

    def progress_bar(self):
        action = val_action(Path(self.dataloader.dataset.root))
        desc = val_description(self.pbar.desc if self.pbar else None, action)
        return self.tqdm(self.dataloader, desc, leave=not self.training)

    def init_metrics(self):
        self.metrics = ClassifyMetrics()

    def preprocess(self, raw: Batch) -> Batch:
        images = raw.img.to(self.device)
        return Batch(images.half() if self.half else images.float(), raw.targets.to(self.device))

    def inference(self, batch):
        y = self.model(batch.img)
        return y, y

    def loss_items(self, train_out, batch):
        return self.compute_loss(train_out, batch.targets).detach().reshape(1)

    def update_metrics(self, preds, batch):
        self.metrics.update(preds, batch.targets)
        self.seen += len(batch.targets)

    def finalize(self):
        top1, top5, _ = self.metrics.compute()
        self.top1_top5 = top1, top5
        if self.cfg.verbose and not self.training:
            for line in verbose_lines(self.seen, top1, top5, self.metrics.per_class(self.names)):
                LOGGER.info(line)
            self.log_speeds((1, 3, self.imgsz, self.imgsz))
            LOGGER.info(f"Results saved to {colorstr('bold', self.save_dir)}")
        return (top1, top5), None

    def __call__(self, model=None):
        results, per_class, speeds = super().__call__(model)
        if self.pbar is not None:  # the training bar shows loss, top-1 and top-5 in its last columns
            self.pbar.set_description(val_result_description(self.pbar.desc, results[2], results[0], results[1]))
        return results, per_class, speeds


# ------------------------------------------------------------------------------------------------------- training
class ClassificationTrainer(BaseTrainer):
    """classify/train.py: ``ClassificationTrainer(ClassifyTrainConfig, callbacks, device, dist).fit()``."""

    task = "classify"
    log_plan = LogPlan(start_images=(("train_images.jpg", "Train Examples"),), result_plots=False,
                       end_images=(("test_images.jpg", "Test Examples (true-predicted)"),))
    loss_names = ("loss",)
    metric_keys = ("metrics/accuracy_top1", "metrics/accuracy_top5")
    lr_keys = ("lr/0",)
    ema_attrs = ()  # names are on the model before the EMA copy is made
    csv_width = RESULTS_CSV_WIDTH
    scale_loss_by_world = False  # a batch-mean loss: DDP's gradient average already gives the global mean
    validate_on_last_batch = True  # as ultralytics: the bar of the epoch's last batch shows the validation

    def result_keys(self):
        """train/loss, <val>/loss, top-1, top-5, lr/0 (classify/train.py's order; <val> is 'val' or 'test')."""
        val = getattr(self, "data", {}).get("val_name", "val")
        return "train/loss", f"{val}/loss", *self.metric_keys, *self.lr_keys

    def load_data(self):
        self.data = check_classify_dataset(self.cfg.data)
        self.nc, self.names = self.data["nc"], self.data["names"]

    def build_model(self):
        cfg = self.cfg
        name = str(cfg.model)
        if Path(name).is_file() or is_checkpoint_path(name):
            model = attempt_load(name, device="cpu", fuse=False)
        elif name.endswith((".yaml", ".yml")):
            model = DetectionModel(name)
        elif vision.is_model_name(name):
            model = vision.create_model(name, pretrained=cfg.pretrained)
            model.vision_name = name
        else:
            raise FlagError(f"--model {name} not found: pass a -cls.pt / detection .pt / model YAML, or a "
                            f"{vision.LIBRARY} model name ({', '.join(vision.model_names()[:12])}, ...)")
        if isinstance(model, DetectionModel):
            LOGGER.warning("WARNING ⚠️ pass YOLOv5 classifier model with '-cls' suffix, i.e. '--model yolov5s-cls.pt'")
            model = ClassificationModel(model=model, nc=self.nc, cutoff=cfg.cutoff or 10)
        elif model_task(model) != "classify" and not hasattr(model, "vision_name"):
            raise FlagError(f"--model {name} is a {model_task(model)} model; classify/train.py needs a classifier, a "
                            f"detection model to cut, or a {vision.LIBRARY} name")
        reshape_classifier_output(model, self.nc)
        for m in model.modules():
            if not cfg.pretrained and hasattr(m, "reset_parameters"):
                m.reset_parameters()
            if isinstance(m, nn.Dropout) and cfg.dropout is not None:
                m.p = cfg.dropout
        for p in model.parameters():
            p.requires_grad = True
        model.names = dict(self.names)
        self.imgsz = cfg.imgsz
        return model

    def build_dataloaders(self):
        cfg = self.cfg
        self.workers = min((os.cpu_count() or 1) - 1, cfg.workers)  # ultralytics' cap
        train = create_classification_dataloader(self.data["train"], self.imgsz, self.local_batch_size, augment=True,
                                                 cache=cfg.cache, rank=self.dist.local_rank, workers=self.workers,
                                                 seed=cfg.seed, world_size=self.dist.world_size)
        val = None
        if self.dist.main:
            val = create_classification_dataloader(self.data["val"], self.imgsz, self.local_batch_size * 2,
                                                   augment=False, cache=cfg.cache, rank=-1, workers=self.workers)
        return train, val

    def optimizer_settings(self):
        return self.cfg.lr0, 0.9, self.cfg.decay, self.batch_size  # nominal batch = batch: no accumulation or scaling

    def lr_lambda(self):
        epochs = self.epochs
        return lambda x: (1 - x / epochs) * (1 - LRF) + LRF  # linear

    def before_training(self):
        model_info(self.model)
        if self.cfg.verbose:
            LOGGER.info(self.model)
        images, labels = next(iter(self.train_loader))
        imshow_cls(images[:25], labels[:25], names=self.names, f=self.save_dir / "train_images.jpg")

    def build_loss(self):
        return classification_loss(self.cfg.label_smoothing)

    def build_validator(self):
        cfg = ClassifyValConfig.from_opt(options(cli.TASKS[self.task].val, dict(
            data=self.data["path"], batch_size=self.local_batch_size * 2, imgsz=self.imgsz, half=self.amp,
            verbose=False)))
        return ClassificationValidator(cfg, dataloader=self.val_loader, save_dir=self.save_dir,
                                       callbacks=self.callbacks, compute_loss=self.loss)

    def start_message(self):
        val = self.data["val_name"]
        return (f"Image sizes {self.imgsz} train, {self.imgsz} test\n"
                f"Using {self.workers * self.dist.world_size} dataloader workers\n"
                f"Logging results to {colorstr('bold', self.save_dir)}\n"
                f"Starting {self.cfg.model} training on {self.cfg.data} dataset with {self.nc} classes for "
                f"{self.epochs} epochs...\n\n{train_header(val)}")

    def progress_header(self):
        return None  # printed once, in start_message()

    def preprocess_batch(self, raw: Batch) -> Batch:
        return Batch(raw.img.to(self.device), raw.targets.to(self.device))

    def compute_loss(self, preds, batch):
        loss = self.loss(preds, batch.targets)
        return loss, loss.detach().reshape(1)

    def progress_row(self, epoch, mem, mloss, batch):
        return train_description(epoch, self.epochs, cuda_memory_reserved_gb(), float(mloss[0]))

    def validate(self, model, pbar=None):
        self.validator.pbar = pbar
        (top1, top5, loss), _, _ = self.validator(model)
        return loss, top1, top5

    @staticmethod
    def fitness_rows(x):
        return x[:, 1]  # top-1 accuracy (rows: val loss, top-1, top-5)

    def lr_values(self, epoch):
        """The lr of group 0 after the scheduler step, as ultralytics logs it (the next epoch's)."""
        g = self.optimizer.param_groups[0]
        return [g["initial_lr"] * self.lf(epoch + 1)]

    def plot_metrics(self):
        plot_cls_results(self.save_dir / "results.csv")

    def closing_message(self):
        scripts = cli.TASKS[self.task]
        return (f"\nTraining complete ({(time.time() - self.t0) / 3600:.3f} hours)"
                f"\nResults saved to {colorstr('bold', self.save_dir)}"
                f"\nPredict:         python {scripts.file('predict')} --weights {self.best} --source im.jpg"
                f"\nValidate:        python {scripts.file('val')} --weights {self.best} --data {self.data['path']}"
                f"\nExport:          python export.py --weights {self.best} --include onnx"
                f"\nVisualize:       https://netron.app\n")

    def final_validation(self):
        """test_images.jpg: the first 25 evaluation images, true and predicted classes (EMA model)."""
        images, labels = (x[:25] for x in next(iter(self.val_loader)))
        pred = self.ema.ema(images.to(self.device)).max(1)[1]
        imshow_cls(images, labels, pred, self.names, verbose=False, f=self.save_dir / "test_images.jpg")


# ----------------------------------------------------------------------------------------------------- prediction
class ClassificationPredictor(Predictor):
    """classify/predict.py: the centre-crop transform, softmax, the top-5 classes written on the image and in txt."""

    task = "classify"
    config_defaults = dict(conf_thres=None, iou_thres=None, max_det=None, save_conf=False, save_crop=False,
                           classes=None, agnostic_nms=False, line_thickness=None, hide_labels=False, hide_conf=False,
                           retina_masks=False)  # box settings classify/predict.py has no flags for

    def source_args(self):
        return {"transforms": classify_transforms(self.imgsz[0])}

    def preprocess(self, im):
        im = (im if is_tensor(im) else from_numpy(im)).to(self.model.device)
        im = im.half() if self.model.fp16 else im.float()
        return im[None] if len(im.shape) == 3 else im

    def postprocess(self, pred, im, im0s):
        return F.softmax(pred, dim=1)

    def annotator_for(self, im0):
        return Annotator(im0, example=str(self.names), pil=True)

    def empty_note(self, results):
        return ""

    def write_result(self, i, prob, frame, im):
        prob = to_numpy(prob.float())
        top5 = prob.argsort()[::-1][:5].tolist()
        text = "\n".join(f"{prob[j]:.2f} {self.names[j]}" for j in top5)
        if self.save_img or self.view_img:
            frame.annotator.text((32, 32), text, txt_color=(255, 255, 255))
        if self.cfg.save_txt:
            with open(f"{frame.txt_path}.txt", "a") as f:
                f.write(text + "\n")
        return f"{', '.join(f'{self.names[j]} {prob[j]:.2f}' for j in top5)}, "
