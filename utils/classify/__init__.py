"""The image-classification task: data, transforms, loss, metrics, plots and head reshaping, for the engine.

    from utils.classify import check_classify_dataset, create_classification_dataloader, classification_loss

Names are imported lazily (as utils.data does), so importing one piece does not pull matplotlib or OpenCV in.
Module map: dataset (folders, --data names, loader), transforms (eval / albumentations), loss, metrics (accuracy,
results.csv and printed text), plots (image grid, results.png). The torchvision /
flowvision model zoo is utils.backend.vision.
"""

from utils.lazy import lazy_exports

_EXPORTS = {
    "dataset": ("ClassificationDataset", "create_classification_dataloader", "check_classify_dataset", "split_dirs",
                "find_classes", "find_samples", "download_classify_dataset", "CLS_IMG_FORMATS", "DOWNLOADABLE"),
    "transforms": ("classify_transforms", "classify_albumentations", "ClassifyTransforms", "center_crop", "normalize",
                   "denormalize", "IMAGENET_MEAN", "IMAGENET_STD"),
    "loss": ("classification_loss", "LabelSmoothingCrossEntropy"),
    "metrics": ("ClassifyMetrics", "results_keys", "results_csv_header", "results_csv_row", "train_header",
                "train_description", "val_description", "val_result_description", "verbose_lines", "speed_line"),
    "plots": ("imshow_cls", "plot_cls_results"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
