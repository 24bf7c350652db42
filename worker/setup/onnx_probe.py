"""Which ONNX Runtime execution providers really work here: a tiny session per provider.

`get_available_providers()` only lists what the build was compiled with; CUDA, DirectML and
CoreML can still fail when the session is made (missing driver, DLL, library), and ONNX Runtime
then falls back to the CPU silently. So each provider gets its own session on a one-node model
(y = x + x), must be the first provider the session reports, and must compute the right answer.
"""

from __future__ import annotations


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(num << 3) + _varint(payload)
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _value_info(name: str) -> bytes:
    dim = _field(1, _field(1, 4))  # TensorShapeProto.dim { dim_value: 4 }
    tensor = _field(1, 1) + _field(2, dim)  # elem_type FLOAT, shape
    return _field(1, name.encode()) + _field(2, _field(1, tensor))


def tiny_model() -> bytes:
    """The ONNX protobuf of y = Add(x, x) on float[4], opset 13, written by hand (no onnx package)."""
    node = _field(1, b"x") + _field(1, b"x") + _field(2, b"y") + _field(4, b"Add")
    graph = _field(1, node) + _field(2, b"doctor") + _field(11, _value_info("x")) + _field(12, _value_info("y"))
    opset = _field(1, b"") + _field(2, 13)
    return _field(1, 7) + _field(7, graph) + _field(8, opset)


def probe_providers() -> dict[str, str]:
    """{provider: "ok" or why it failed} for every provider this onnxruntime build offers."""
    import numpy as np
    import onnxruntime as ort

    model = tiny_model()
    x = np.arange(4, dtype=np.float32)
    result = {}
    for provider in ort.get_available_providers():
        try:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            sess = ort.InferenceSession(model, sess_options=opts, providers=[provider])
            used = sess.get_providers()
            if not used or used[0] != provider:
                result[provider] = f"fell back to {used[0] if used else 'nothing'}"
                continue
            (y,) = sess.run(None, {"x": x})
            result[provider] = "ok" if np.allclose(y, 2 * x) else "wrong result"
        except Exception as e:  # noqa: BLE001 - each provider's own failure is the answer
            result[provider] = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
    return result
