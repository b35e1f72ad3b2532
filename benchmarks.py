"""Benchmark every export format: export, validate (mAP50-95) and time inference, on OneFlow (default) or PyTorch.

Usage:
    python benchmarks.py --weights yolov5s.pt --img 640
    python benchmarks.py --weights best.pt --data datasets/synthetic/synthetic.yaml --img 256 --backend torch
    python benchmarks.py --weights best.pt --test          # export only: which formats work here

Formats this build cannot produce (see export.py) get an empty row and a warning saying why; with --hard-fail any
other failure raises, and --hard-fail 0.3 also requires every mAP50-95 above 0.3.
"""

import sys
import time
from pathlib import Path

FILE = Path(__file__).resolve()
ROOT = FILE.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

import pandas as pd  # noqa: E402

import export  # noqa: E402
import val  # noqa: E402
from utils import cli, errors  # noqa: E402
from utils.backend import NAME, VERSION, select_device  # noqa: E402
from utils.export import export_formats, file_size, unavailable  # noqa: E402
from utils.log import LOGGER  # noqa: E402


class Unavailable(Exception):
    """A format that cannot run here; tolerated by --hard-fail (as ultralytics' AssertionErrors are)."""


class BenchmarkError(errors.UserError, RuntimeError):
    """--hard-fail: a format failed or scored below the floor (a result to act on, not a bug)."""


def _check_format(arg, cpu, gpu, device):
    reason = unavailable(arg) if arg != "-" else None
    if reason:
        raise Unavailable(reason)
    if device.type == "cpu" and not cpu:
        raise Unavailable("inference not supported on CPU")
    if device.type == "cuda" and not gpu:
        raise Unavailable("inference not supported on GPU")


def run(project=ROOT / "runs/val", **kwargs):
    """Export, validate and time each format; returns the results as a pandas DataFrame (also logged as a table).

    Keywords are benchmarks.py's flags. Exports are written next to ``weights``; validation runs go to
    ``project``/exp*."""
    opt = cli.options("benchmarks", kwargs)
    weights, imgsz, data, device, half = opt.weights, opt.imgsz, opt.data, opt.device, opt.half
    test, hard_fail = opt.test, opt.hard_fail
    t = time.time()
    dev = str(device)
    device = select_device(dev, log=LOGGER.info)
    rows = []
    for i, (name, arg, suffix, cpu, gpu) in export_formats().iterrows():
        try:
            _check_format(arg, cpu, gpu, device)
            w = str(weights) if arg == "-" else export.run(weights=weights, imgsz=[imgsz], include=[arg], device=dev,
                                                           half=half)[-1]
            if suffix not in w:
                raise RuntimeError(f"export wrote {w}, not a {suffix} file")
            if test:
                rows.append([name, "✅"])
            else:
                results, _, times = val.run(data, weights=w, batch_size=opt.batch_size, imgsz=imgsz, plots=False,
                                            device=dev, task="speed", half=half, project=project)
                rows.append([name, round(file_size(w), 1), round(results[3], 4), round(times[1], 2)])
        except Exception as e:
            if arg == "-" and errors.is_user_error(e):  # the --weights themselves are unusable: no row can work
                raise
            if hard_fail and not isinstance(e, Unavailable):
                raise BenchmarkError(f"Benchmark --hard-fail for {name}: {e}") from e
            LOGGER.warning(f"WARNING ⚠️ Benchmark failure for {name}: {e}")
            rows.append([name, "❌"] if test else [name, None, None, None])
        if opt.pt_only and i == 0:
            break

    columns = ["Format", "Export"] if test else ["Format", "Size (MB)", "mAP50-95", "Inference time (ms)"]
    table = pd.DataFrame(rows, columns=columns)
    LOGGER.info(f"\nBenchmarks complete ({time.time() - t:.2f}s) on {NAME}-{VERSION} {device.type.upper()}")
    LOGGER.info(str(table))
    if hard_fail and isinstance(hard_fail, str) and not test:
        floor = float(hard_fail)
        low = [f"{r[0]} {r[2]}" for r in rows if r[2] is not None and not r[2] > floor]
        if low:
            raise BenchmarkError(f"HARD FAIL: mAP50-95 < floor {floor}: {', '.join(low)}")
    return table


def parse_opt(argv=None):
    opt = cli.parse("benchmarks", argv)
    cli.print_args(vars(opt))
    return opt


def main(opt):
    return run(**{k: v for k, v in vars(opt).items() if k != "backend"})


if __name__ == "__main__":
    with errors.guard():  # a user error: one 'ERROR:' line and exit 1 (YOLOV5_TRACEBACK=1 adds the traceback)
        main(parse_opt())
