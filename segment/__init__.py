"""segment/train.py, val.py, predict.py: the instance-segmentation scripts (thin CLIs on utils/engine)."""
