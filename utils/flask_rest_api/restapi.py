"""A Flask REST API serving YOLOv5 models: POST an image, get its detections as JSON.

Usage (served by waitress, a production WSGI server; Flask's own server is for development only):
    python utils/flask_rest_api/restapi.py --port 5000 --model yolov5s            # official weights (downloaded)
    python utils/flask_rest_api/restapi.py --model runs/train/exp/weights/best.pt  # served as .../object-detection/best
    curl -X POST -F image=@img.jpg http://localhost:5000/v1/object-detection/yolov5s
    waitress-serve --port 5000 --call 'utils.flask_rest_api.restapi:app_from_env'  # models from $YOLOV5_REST_MODELS

Replies:
    200  [{"xmin": 12.3, "ymin": ..., "xmax": ..., "ymax": ..., "confidence": 0.87, "class": 0, "name": "person"}, ...]
    400  {"error": "..."}  no 'image' field, bytes that are not an image, or an image over the size limits
    404  {"error": "..."}  a model name the server does not serve (only the names it loaded at start-up: nothing in
                           a URL reaches the file system), or an unknown path
    405  {"error": "..."}  a method the path does not take
    500  {"error": "..."}  inference failed; the server keeps serving
GET /v1/object-detection lists the served models.
"""

import io
import os
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import waitress  # noqa: E402
from flask import Flask, Response, jsonify, request  # noqa: E402
from PIL import Image, UnidentifiedImageError  # noqa: E402
from werkzeug.exceptions import HTTPException  # noqa: E402

from utils import cli, errors  # noqa: E402

DETECTION_URL = "/v1/object-detection/<model>"
_LIMITS = cli.defaults("utils/flask_rest_api/restapi")
MAX_MB = _LIMITS["max_mb"]  # largest request body
MAX_PIXELS = _LIMITS["max_pixels"]  # largest image (width x height), checked before the pixels are decoded
MODELS_ENV = "YOLOV5_REST_MODELS"  # app_from_env(): space-separated --model values, for WSGI servers' --call


def _error(code, message):
    return jsonify(error=message), code


def decode_image(data, max_pixels=MAX_PIXELS):
    """PIL image from uploaded bytes; ValueError with a message for anything that is not a usable image."""
    if not data:
        raise ValueError("the 'image' field is empty")
    try:
        im = Image.open(io.BytesIO(data))
        w, h = im.size  # read from the header: nothing decoded yet
        if w * h > max_pixels:
            raise ValueError(f"image too large: {w}x{h} = {w * h} pixels, the limit is {max_pixels}")
        im.load()
    except UnidentifiedImageError:  # PIL's message names its BytesIO object, which means nothing to a client
        raise ValueError("not a readable image: the bytes are in no image format this server decodes (JPEG, PNG, "
                         "BMP, TIFF, WebP, ...)") from None
    except Image.DecompressionBombError as e:
        raise ValueError(f"image too large: {e}") from None
    except (OSError, SyntaxError) as e:  # truncated or corrupt files
        raise ValueError(f"corrupt image: {e}") from None
    return im


def create_app(models, size=640, max_mb=MAX_MB, max_pixels=MAX_PIXELS):
    """The Flask app serving ``models`` (name -> AutoShape model) at /v1/object-detection/<name>."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = int(max_mb * (1 << 20))
    lock = threading.Lock()  # one inference at a time: eager models are not re-entrant

    @app.errorhandler(413)
    def too_large(_):
        return _error(400, f"request too large: the limit is {max_mb:g} MB")

    @app.errorhandler(HTTPException)
    def http_error(e):  # unknown paths, wrong methods, malformed requests: JSON like every other reply
        return _error(e.code, f"{e.name}: {e.description}")

    @app.route("/v1/object-detection", methods=["GET"])
    def list_models():
        return jsonify(models=sorted(models))

    @app.route(DETECTION_URL, methods=["POST"])
    def predict(model):
        if model not in models:
            return _error(404, f"unknown model '{model}'; this server has: {', '.join(sorted(models))}")
        f = request.files.get("image")
        if f is None:
            return _error(400, "no image: send the image as the multipart form field 'image'")
        try:
            im = decode_image(f.read(), max_pixels)
        except ValueError as e:
            return _error(400, str(e))
        try:
            with lock:
                results = models[model](im, size=size)
            body = results.pandas().xyxy[0].to_json(orient="records")
        except Exception as e:  # the request fails, the server does not
            app.logger.exception("inference failed")
            return _error(500, f"inference failed: {type(e).__name__}: {e}")
        return Response(body, mimetype="application/json")

    return app


def load_models(specs):
    """name -> AutoShape model, for hub names ('yolov5s') or weights paths (served under the file's stem)."""
    import hubconf  # noqa: PLC0415

    models = {}
    for spec in specs:
        if Path(spec).suffix:  # a weights file
            models[Path(spec).stem] = hubconf.custom(path=spec)
        else:
            models[spec] = getattr(hubconf, spec)() if hasattr(hubconf, spec) else hubconf._create(spec)
    return models


def app_from_env():
    """The app for a WSGI server's --call: models from $YOLOV5_REST_MODELS (default yolov5s), default limits."""
    return create_app(load_models(os.getenv(MODELS_ENV, "yolov5s").split()))


def parse_opt(argv=None):
    return cli.parse("utils/flask_rest_api/restapi", argv)


def main(opt):
    """Serve with waitress (threads take requests while one inference runs; bodies over --max-mb are cut off)."""
    models = load_models(opt.model)
    app = create_app(models, size=opt.size, max_mb=opt.max_mb, max_pixels=opt.max_pixels)
    print(f"Serving {', '.join(sorted(models))} at http://{opt.host}:{opt.port}/v1/object-detection/<model> "
          f"(waitress, {opt.threads} threads)", flush=True)
    # waitress reads a whole body before the app sees it: bodies up to 4x --max-mb get Flask's JSON error (400),
    # larger ones are cut off by waitress itself (413, connection closed) without being buffered
    waitress.serve(app, host=opt.host, port=opt.port, threads=opt.threads, ident="yolov5",
                   max_request_body_size=int(4 * opt.max_mb * (1 << 20)) + (1 << 20))


if __name__ == "__main__":
    with errors.guard():  # a user error: one 'ERROR:' line and exit 1 (YOLOV5_TRACEBACK=1 adds the traceback)
        main(parse_opt())
