"""The REST API for real: a server process on 127.0.0.1, real HTTP requests, JSON and status codes, then shutdown."""

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
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
           "127.0.0.1", "--port", str(port), "--size", str(SIZE), "--max-mb", "1", "--max-pixels", "1000000",
           "--threads", "8"]
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


# ------------------------------------------------------------------------------------------- hostile and under load
def test_model_names_only_from_the_allow_list(server):
    """A model name in the URL only indexes the served models: paths and other names never reach the disk."""
    image = server["images"][0].read_bytes()
    for name in ["..%2F..%2Fetc%2Fpasswd", "crafted.pt", str(server["weights"]).replace("/", "%2F"), "yolov5s"]:
        status, reply = post_image(f"{server['base']}/{name}", image)
        assert status == 404 and reply["error"], (name, status, reply)  # %2F is decoded: then no route matches
        assert "%2F" in name or "crafted" in reply["error"]  # otherwise: the served names, listed
    for url in [f"{server['base']}/../../crafted", server["base"] + "/crafted/extra"]:
        status, reply = post_image(url, image)
        assert status in (404, 405) and "error" in reply, url


def test_errors_are_json_for_any_path_and_method(server):
    for url, method in [(server["url"], "GET"), (server["base"].rsplit("/", 1)[0] + "/nothing-here", "GET")]:
        req = urllib.request.Request(url, method=method)
        try:
            urllib.request.urlopen(req, timeout=30)
            raise AssertionError(f"{method} {url} succeeded")
        except urllib.error.HTTPError as e:
            assert e.code in (404, 405) and "error" in json.loads(e.read()), url
    status, reply = post_image(url=server["url"], data=b"\xff\xd8\xff" + b"\x00" * 100)  # a JPEG's first bytes
    assert status == 400 and "BytesIO" not in reply["error"] and "0x" not in reply["error"]


def _bad_bodies(good):
    """(name, body or None, field, expected status) of malformed requests."""
    from tests.utils.test_hostile_inputs import png_header

    return [("no field", None, "image", 400), ("empty", b"", "image", 400),
            ("garbage", b"\x00garbage" * 50, "image", 400), ("truncated", good[:300], "image", 400),
            ("bomb header", png_header(100_000, 100_000), "image", 400),
            ("other field", good, "file", 400), ("unknown model", good, "image", 404)]


def test_under_load_every_request_answered(server):
    """8 clients, 200 requests (good images and the bad bodies above, mixed): every good one gets the same
    detections as alone, every bad one a 4xx JSON error, and the server stays up."""
    from concurrent.futures import ThreadPoolExecutor

    goods = [p.read_bytes() for p in server["images"]]
    expected = [post_image(server["url"], g)[1] for g in goods]
    assert all(isinstance(e, list) for e in expected)
    bad = _bad_bodies(goods[0])
    jobs = [("good", i % len(goods)) if i % 3 else ("bad", (i // 3) % len(bad)) for i in range(200)]

    def send(job):
        kind, k = job
        if kind == "good":
            status, reply = post_image(server["url"], goods[k])
            return kind, k, status, reply
        name, body, field, _ = bad[k]
        url = server["base"] + "/nosuchmodel" if name == "unknown model" else server["url"]
        return kind, k, *post_image(url, body, field=field)

    t0 = time.time()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, jobs))
    seconds = time.time() - t0
    for kind, k, status, reply in results:
        if kind == "good":
            assert status == 200 and reply == expected[k]
        else:
            assert status == bad[k][3] and isinstance(reply, dict) and reply.get("error"), (bad[k][0], status, reply)
    assert server["proc"].poll() is None
    n_good = sum(kind == "good" for kind, *_ in results)
    print(f"\nREST load: 8 clients, {len(jobs)} requests ({n_good} good, {len(jobs) - n_good} bad) in {seconds:.1f} s "
          f"= {len(jobs) / seconds:.1f} requests/s, 0 errors")
