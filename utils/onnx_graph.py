"""Editing ONNX graphs that oneflow-onnx writes (framework-free: only the onnx package).

oneflow-onnx names the graph's input and outputs after OneFlow's internal tensors and bakes the traced batch size into
Reshape/Slice constants; these functions give the file ultralytics' names (``images`` -> ``output0``...) and, for a
``--dynamic`` export, set the batch free. utils.backend calls them after the OneFlow export itself.
"""

import numpy as np
import onnx
from onnx import numpy_helper


def finish_oneflow_onnx(src, dst, batch, dynamic, input_names, output_names):
    """oneflow-onnx's file -> ours: graph input/outputs renamed; with ``dynamic``, the traced batch set free."""
    m = onnx.load(src)
    g = m.graph
    init_names = {t.name for t in g.initializer}
    inputs = [v for v in g.input if v.name not in init_names]
    if len(inputs) != len(input_names) or len(g.output) != len(output_names):
        raise RuntimeError(f"oneflow-onnx wrote {len(inputs)} input(s) and {len(g.output)} output(s), expected "
                           f"{len(input_names)} and {len(output_names)}")
    rename = {v.name: n for v, n in zip(list(inputs) + list(g.output), input_names + output_names)}
    for v in list(inputs) + list(g.output):
        v.name = rename[v.name]
    for node in g.node:
        for field in (node.input, node.output):
            new = [rename.get(x, x) for x in field]
            del field[:]
            field.extend(new)
    axes = {}
    if dynamic:
        free_batch(m, batch)
        for v in list(inputs) + list(g.output):
            v.type.tensor_type.shape.dim[0].dim_param = "batch"
            axes[v.name] = {0: "batch"}
        del g.value_info[:]
    onnx.save(m, dst)
    return axes


def free_batch(m, batch):
    """Rewrite the constants where oneflow-onnx baked the traced ``batch`` into the graph.

    Reshape targets whose first entry is the batch get 0 ('copy the input's dim 0'); Slice ends of axis 0 that
    stop at the batch get INT64_MAX. Only nodes whose data input has the batch as its first dimension (from ONNX
    shape inference on the static graph) are touched; export.py then verifies the file at two batch sizes.
    """
    g = m.graph
    inferred = onnx.shape_inference.infer_shapes(m).graph
    dim0 = {}
    for v in list(inferred.value_info) + list(inferred.input) + list(inferred.output):
        dims = v.type.tensor_type.shape.dim
        if len(dims) and dims[0].HasField("dim_value"):
            dim0[v.name] = dims[0].dim_value
    inits = {t.name: t for t in g.initializer}
    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant" and len(n.output) == 1}

    def value(name):
        if name in inits:
            return numpy_helper.to_array(inits[name])
        node = consts.get(name)
        if node is not None and node.attribute and node.attribute[0].name == "value":
            return numpy_helper.to_array(node.attribute[0].t)
        return None

    def replace(node, k, array):  # a new initializer per node: constants may be shared between nodes
        name = f"{node.input[k]}__batch_free_{node.name or id(node)}"
        g.initializer.append(numpy_helper.from_array(array, name))
        node.input[k] = name

    for node in g.node:
        if not node.input or dim0.get(node.input[0]) != batch:
            continue
        if node.op_type == "Reshape" and len(node.input) > 1:
            shape = value(node.input[1])
            if shape is not None and shape.ndim == 1 and len(shape) and shape[0] == batch:
                shape = shape.copy()
                shape[0] = 0
                replace(node, 1, shape)
        elif node.op_type == "Slice" and len(node.input) > 3:
            starts, ends, axes = value(node.input[1]), value(node.input[2]), value(node.input[3])
            if starts is None or ends is None or axes is None:
                continue
            hit = [j for j, a in enumerate(axes.tolist()) if a == 0 and starts[j] == 0 and ends[j] == batch]
            if hit:
                ends = ends.astype(np.int64)
                ends[hit] = np.iinfo(np.int64).max
                replace(node, 2, ends)
    used = {x for node in g.node for x in node.input}
    kept = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
