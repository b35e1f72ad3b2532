"""Fetching release weights for names like 'yolov5s.pt', with one clear error when the machine is offline.

``is_url`` is ultralytics' ``utils.downloads.is_url`` and lives here because attempt_download uses it: a URL given as
``--weights`` names its file (ultralytics saves it in the working folder too).
"""

import os
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

from utils.errors import UserError
from utils.log import LOGGER

GITHUB_RELEASE = "https://github.com/ultralytics/yolov5/releases/download/v7.0/"
RELEASE_ASSETS = {f"yolov5{size}{suffix}.pt" for size in "nsmlx" for suffix in ("", "6", "-cls", "-seg")}


class DownloadError(UserError, RuntimeError):
    """A file that had to be downloaded could not be; the message says where to put it by hand."""


def is_url(url, check=False):
    """Whether ``url`` is an http(s)/ftp URL (``check``: and answers, which needs the network)."""
    try:
        result = urllib.parse.urlparse(str(url))
        if not (result.scheme and result.netloc):
            return False
        if check:
            with urllib.request.urlopen(str(url), timeout=5) as r:
                return r.getcode() == 200
        return True
    except Exception:
        return False


def attempt_download(file, timeout=20):
    """Return ``file`` if it exists; for an official v7.0 asset name, download it next to the requested path.

    A URL stands for its file name in the working folder (as ultralytics saves it): that file is used when present,
    else fetched like the name (only v7.0 release assets are downloaded, from the release).
    Raises:
        FileNotFoundError: the file does not exist and is not a release asset.
        DownloadError: the download failed (e.g. offline); nothing partial is left behind.
    """
    given = str(file).strip().replace("'", "")
    url_given = is_url(given)
    # Path() would fold 'https://host/a.pt' into a relative folder 'https:/host', so a URL is reduced to its name
    file = Path(Path(urllib.parse.unquote(urllib.parse.urlparse(given).path)).name if url_given else given)
    if file.exists():
        return str(file)
    if file.name not in RELEASE_ASSETS:
        hint = " (one-yolov5 downloads only the v7.0 release weights: download it and pass its path)"
        raise FileNotFoundError(f"weights not found: {given}{hint}" if url_given else f"weights not found: {file}")
    url = GITHUB_RELEASE + file.name
    fetch(url, file, f"{file.name} is not here", f"Download it on a machine with internet access and put it at "
          f"{file.resolve()}", timeout=timeout, min_bytes=100_000)
    return str(file)


def fetch(url, file, missing, hint, timeout=30, min_bytes=0):
    """Download ``url`` to ``file`` through ``file.part`` (nothing partial is left behind); returns ``file``.

    Raises:
        DownloadError: '<missing> and it could not be downloaded from <url> (<why>). <hint>', ``hint`` saying what to
            put where by hand; also for a file under ``min_bytes`` (an error page, a truncated transfer).
    """
    file = Path(file)
    tmp = file.with_name(file.name + ".part")
    LOGGER.info(f"Downloading {url} to {file}...")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
        if tmp.stat().st_size < min_bytes:
            raise DownloadError(f"the downloaded file is only {tmp.stat().st_size} bytes")
        os.replace(tmp, file)
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{missing} and it could not be downloaded from {url} ({type(e).__name__}: {e}). "
                            f"{hint}") from None
    return file
