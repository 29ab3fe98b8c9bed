"""Peer for masteer-models/tests/kquants.rs (independent references: llama.cpp and
gguf-py, llama.cpp's own Python GGUF library).

kquant_peer.py files SOURCE.gguf OUT_DIR '[token ids]'
    Quantise SOURCE with llama.cpp's quantiser (llama_model_quantize) to Q2_K, Q3_K_M,
    Q4_K_M, Q5_K_M and Q6_K; for each file, have llama.cpp convert it back to F32
    (its own dequantisation) and compute the logits of the last token on that F32
    file (llama.cpp's precise path; its quantised matmuls round the activations too).
    Prints JSON {type: {"path": ..., "last_logits": [...]}}.

kquant_peer.py native OUT_DIR '[token ids]' SOURCE.gguf
    For SOURCE and its Q4_K_M requantisation (in OUT_DIR), llama.cpp's own logits of the last token on that file as stored
    (its quantised matmuls, which round the activations to 8 bits; F32 KV cache).
    Prints JSON {file: [logits]}.

kquant_peer.py blocks
    Random blocks of every supported ggml type (scales set to finite f16 values),
    dequantised by gguf-py. Prints JSON {type: {"bytes": hex, "values": [...]}}.
"""
import ctypes
import json
import os
import sys

KINDS = {"Q2_K": 10, "Q3_K_M": 12, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18}
F32 = 0


def quantize(llama_cpp, src, dst, ftype):
    if os.path.exists(dst):
        return
    tmp = dst + ".tmp"
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.allow_requantize = True
    p.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), tmp.encode(), ctypes.byref(p))
    if rc != 0:
        raise SystemExit(f"llama_model_quantize({dst}) returned {rc}")
    os.replace(tmp, dst)


def files(src, out_dir, ids):
    import llama_cpp

    os.makedirs(out_dir, exist_ok=True)
    llama_cpp.llama_backend_init()
    res = {}
    for name, ftype in KINDS.items():
        path = os.path.join(out_dir, f"smollm2-{name}.gguf")
        quantize(llama_cpp, src, path, ftype)
        f32 = os.path.join(out_dir, f"smollm2-{name}-as-f32.gguf")
        quantize(llama_cpp, path, f32, F32)
        llm = llama_cpp.Llama(
            model_path=f32, n_ctx=256, n_threads=2, logits_all=True, verbose=False
        )
        llm.eval(ids)
        res[name] = {"path": path, "last_logits": [float(x) for x in llm.scores[len(ids) - 1]]}
        del llm
        os.remove(f32)
    json.dump(res, sys.stdout)


def native(ids, paths):
    import llama_cpp

    llama_cpp.llama_backend_init()
    res = {}
    for path in paths:
        llm = llama_cpp.Llama(
            model_path=path, n_ctx=256, n_threads=2, logits_all=True, verbose=False,
            type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32,
        )
        llm.eval(ids)
        res[path] = [float(x) for x in llm.scores[len(ids) - 1]]
        del llm
    json.dump(res, sys.stdout)


def quantized(src, out_dir, name):
    """SOURCE requantised by llama.cpp to `name` (a KINDS key) in OUT_DIR."""
    import llama_cpp

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"smollm2-{name}.gguf")
    quantize(llama_cpp, src, path, KINDS[name])
    return path


# (ggml type name, block bytes, offsets of f16 scale fields)
LAYOUTS = [
    ("Q4_0", 18, [0]),
    ("Q4_1", 20, [0, 2]),
    ("Q5_0", 22, [0]),
    ("Q5_1", 24, [0, 2]),
    ("Q8_0", 34, [0]),
    ("IQ4_NL", 18, [0]),
    ("Q2_K", 84, [80, 82]),
    ("Q3_K", 110, [108]),
    ("Q4_K", 144, [0, 2]),
    ("Q5_K", 176, [0, 2]),
    ("Q6_K", 210, [208]),
]


def blocks():
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    rng = np.random.default_rng(0)
    out = {}
    for name, size, scales in LAYOUTS:
        n_blocks = 8
        raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
        for off in scales:
            raw[:, off : off + 2] = (
                rng.normal(0, 0.05, size=n_blocks).astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
            )
        t = GGMLQuantizationType[name]
        values = dequantize(raw.reshape(-1), t).astype(np.float32).reshape(-1)
        out[name] = {"bytes": raw.tobytes().hex(), "values": values.tolist()}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "files":
        files(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
    elif sys.argv[1] == "native":
        out_dir, ids, src = sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
        native(ids, [src, quantized(src, out_dir, "Q4_K_M")])
    elif sys.argv[1] == "blocks":
        blocks()
    else:
        raise SystemExit(__doc__)
