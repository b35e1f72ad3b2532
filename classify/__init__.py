"""classify/train.py, val.py, predict.py: the image-classification scripts (thin CLIs on utils/engine)."""
