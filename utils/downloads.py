"""Fetching release weights for names like 'yolov5s.pt', with one clear error when the machine is offline."""

import os
import urllib.request
from pathlib import Path

from utils.checks import is_url  # noqa: F401 (ultralytics' utils.downloads.is_url)
from utils.errors import UserError
from utils.log import LOGGER

GITHUB_RELEASE = "https://github.com/ultralytics/yolov5/releases/download/v7.0/"
RELEASE_ASSETS = {f"yolov5{size}{suffix}.pt" for size in "nsmlx" for suffix in ("", "6", "-cls", "-seg")}


class DownloadError(UserError, RuntimeError):
    """A file that had to be downloaded could not be; the message says where to put it by hand."""


def attempt_download(file, timeout=20):
    """Return ``file`` if it exists; for an official v7.0 asset name, download it next to the requested path.

    Raises:
        FileNotFoundError: the file does not exist and is not a release asset.
        DownloadError: the download failed (e.g. offline); nothing partial is left behind.
    """
    file = Path(str(file).strip().replace("'", ""))
    if file.exists():
        return str(file)
    if file.name not in RELEASE_ASSETS:
        raise FileNotFoundError(f"weights not found: {file}")
    url = GITHUB_RELEASE + file.name
    tmp = file.with_name(file.name + ".part")
    LOGGER.info(f"Downloading {url} to {file}...")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
        if tmp.stat().st_size < 1e5:
            raise DownloadError(f"downloaded file is only {tmp.stat().st_size} bytes")
        os.replace(tmp, file)
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{file.name} is not here and could not be downloaded from {url} ({e}). "
                            f"Download it on a machine with internet access and put it at {file.resolve()}") from None
    return str(file)
