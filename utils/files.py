"""Paths: the repository root, finding files the user names by short name, and run-folder numbering."""

import glob
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # repository root (the folder holding train.py)


def find_file(name, search_dirs=("models", "data")):
    """Return the path of ``name``: as given if it exists, else the unique match under ROOT/<search_dirs>/**.

    Raises:
        FileNotFoundError: nothing matches, or several files match (the message lists them).
    """
    name = str(name)
    if not name or Path(name).is_file():
        return name
    matches = []
    for d in search_dirs:
        matches += glob.glob(str(ROOT / d / "**" / Path(name).name), recursive=True)
    matches = sorted(set(matches))
    if not matches:
        raise FileNotFoundError(f"File not found: {name} (also searched {', '.join(str(ROOT / d) for d in search_dirs)})")
    if len(matches) > 1:
        raise FileNotFoundError(f"Several files match '{name}', name one of them: {matches}")
    return matches[0]


def check_yaml(file, suffix=(".yaml", ".yml")):
    """find_file() for YAML files, with a clear error for other suffixes."""
    if suffix and Path(str(file)).suffix.lower() not in suffix:
        raise ValueError(f"{file} is not a YAML file (expected one of {suffix})")
    return find_file(file)


def increment_path(path, exist_ok=False, sep="", mkdir=False):
    """runs/exp -> runs/exp2, runs/exp3, ... (the first free one) unless exist_ok; optionally create the folder."""
    path = Path(path)
    if path.exists() and not exist_ok:
        path, suffix = (path.with_suffix(""), path.suffix) if path.is_file() else (path, "")
        for n in range(2, 9999):
            p = f"{path}{sep}{n}{suffix}"
            if not os.path.exists(p):
                break
        path = Path(p)
    if mkdir:
        path.mkdir(parents=True, exist_ok=True)
    return path
