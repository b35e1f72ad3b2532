"""The engine the three tasks share: loops in ``trainer``, ``validator`` and ``predictor`` (base classes with named
hooks), typed settings in ``config``, the training scripts' shared main in ``launch``, and one module per task with its
Trainer / Validator / Predictor subclasses: ``detection``, ``segmentation`` (extends detection), ``classification``.

Import the module you need (``from utils.engine.detection import DetectionValidator``); nothing is imported here.
"""
