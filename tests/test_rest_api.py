"""The REST API for real: a server process on 127.0.0.1, real HTTP requests, JSON and status codes, then shutdown."""

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT
from tests.test_detect import make_images, make_weights
from utils.flask_rest_api.example_request import post_image

pytest.importorskip("flask")

SIZE = 128
KEYS = ["xmin", "ymin", "xmax", "ymax", "confidence", "class", "name"]


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _png(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Start restapi.py serving the crafted weights as 'crafted'; stop it (and only it) afterwards."""
    root = tmp_path_factory.mktemp("rest")
    weights = make_weights(root / "crafted.pt")
    images = make_images(root)
    port = _free_port()
    log = open(root / "server.log", "w")
    cmd = [sys.executable, str(ROOT / "utils" / "flask_rest_api" / "restapi.py"), "--model", str(weights), "--host",
           "127.0.0.1", "--port", str(port), "--size", str(SIZE), "--max-mb", "1", "--max-pixels", "1000000"]
    proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    base = f"http://127.0.0.1:{port}/v1/object-detection"
    deadline = time.time() + 240
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(root / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(base, timeout=5) as r:
                    assert json.loads(r.read()) == {"models": ["crafted"]}
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("server did not come up in time") from None
                time.sleep(0.5)
        yield {"url": f"{base}/crafted", "base": base, "proc": proc, "weights": weights, "images": images}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_detections_round_trip(server):
    path = server["images"][0]
    status, reply = post_image(server["url"], path.read_bytes(), filename=path.name)
    assert status == 200 and isinstance(reply, list) and reply
    assert all(list(d) == KEYS for d in reply)
    # the same as the hub model in this process
    import hubconf

    model = hubconf.custom(path=str(server["weights"]), _verbose=False, device="cpu")
    expected = model(str(path), size=SIZE).pandas().xyxy[0]
    assert len(reply) == len(expected)
    got = np.array([[d[k] for k in KEYS[:6]] for d in reply], dtype=float)
    assert np.allclose(got, expected[KEYS[:6]].to_numpy(dtype=float), atol=1e-3)
    assert {d["name"] for d in reply} <= {"rectangle", "ellipse"}


def test_bad_requests_get_400_and_the_server_stays_up(server):
    url = server["url"]
    status, reply = post_image(url, None)  # no 'image' field
    assert status == 400 and "no image" in reply["error"]
    status, reply = post_image(url, b"")  # an empty one
    assert status == 400 and "empty" in reply["error"]
    status, reply = post_image(url, b"\x00garbage bytes, not an image" * 10)
    assert status == 400 and "not a readable image" in reply["error"]
    truncated = server["images"][0].read_bytes()[:300]
    status, reply = post_image(url, truncated)
    assert status == 400 and reply["error"]
    big = _png(np.zeros((1200, 1000, 3), np.uint8))  # 1.2 Mpx over the 1 Mpx limit, but a small file
    assert len(big) < (1 << 20)
    status, reply = post_image(url, big, filename="big.png")
    assert status == 400 and "too large" in reply["error"]
    noise = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (800, 800, 3), dtype=np.uint8))[1]
    assert noise.nbytes > (1 << 20)  # a request over --max-mb 1
    status, reply = post_image(url, noise.tobytes(), filename="noise.png")
    assert status == 400 and "too large" in reply["error"]
    status, reply = post_image(server["base"] + "/yolov5x", server["images"][0].read_bytes())
    assert status == 404 and "crafted" in reply["error"]

    assert server["proc"].poll() is None
    status, reply = post_image(url, server["images"][1].read_bytes())
    assert status == 200 and reply


def test_example_client(server):
    path = server["images"][2]
    r = subprocess.run([sys.executable, str(ROOT / "utils" / "flask_rest_api" / "example_request.py"), "--url",
                        server["url"], "--image", str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("HTTP 200") and "'confidence'" in r.stdout
