"""Read a run folder's TensorBoard event files back with tensorboard's own EventAccumulator (for the logger tests)."""


def read_events(folder):
    """({scalar tag: [(step, value)]}, {image tag: [(step, width, height)]}) of the event file(s) in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: PLC0415

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    scalars = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags["scalars"]}
    images = {t: [(e.step, e.width, e.height) for e in acc.Images(t)] for t in tags["images"]}
    return scalars, images


def read_run(folder):
    """(results.csv as a DataFrame with stripped column names, scalars, images) of a training run folder."""
    import pandas as pd  # noqa: PLC0415

    df = pd.read_csv(f"{folder}/results.csv")
    df.columns = [c.strip() for c in df.columns]
    return (df, *read_events(folder))
