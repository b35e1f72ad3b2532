"""Instance segmentation, the task's own maths and data on top of detection's: masks (prototypes -> instance masks,
polygons <-> masks, mask IoU), the dataset and loader with masks, the loss, the box + mask metrics and the plots.

Modules are imported by name (``from utils.segment.masks import process_mask``); this package imports nothing itself,
so ``import utils.segment`` costs nothing.
"""
