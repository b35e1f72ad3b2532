"""Send an image to the YOLOv5 REST API and print the detections (standard library only).

Usage:
    python utils/flask_rest_api/example_request.py --image img.jpg
    python utils/flask_rest_api/example_request.py --url http://localhost:5000/v1/object-detection/best --image a.png
"""

import argparse
import json
import pprint
import urllib.error
import urllib.request
import uuid
from pathlib import Path

DETECTION_URL = "http://localhost:5000/v1/object-detection/yolov5s"


def post_image(url, data, field="image", filename="image.jpg", timeout=60):
    """POST ``data`` (bytes) as a multipart form field; returns (HTTP status, decoded JSON reply)."""
    boundary = uuid.uuid4().hex
    parts = []
    if data is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:  # 4xx/5xx still carry a JSON body with "error"
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"error": raw.decode(errors="replace")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=DETECTION_URL, help="detection endpoint")
    parser.add_argument("--image", default="zidane.jpg", help="image file to send")
    opt = parser.parse_args()
    status, reply = post_image(opt.url, Path(opt.image).read_bytes(), filename=Path(opt.image).name)
    print(f"HTTP {status}")
    pprint.pprint(reply)


if __name__ == "__main__":
    main()
