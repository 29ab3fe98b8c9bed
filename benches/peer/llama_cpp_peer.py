#!/usr/bin/env python3
"""The llama.cpp peer on the same machine: prefill 128/512 and decode 64 (tok/s).

Usage: python3 benches/peer/llama_cpp_peer.py [--threads 2] [--reps 3] [--only Q4]

Needs `pip install llama-cpp-python` (it compiles llama.cpp from source, 8-15 min on
2 cores). Uses the embedded model from MASteer-rs' cache and makes its exact F32 and
F16 dequantisations and a Q4_K_M requantisation with llama.cpp's own quantiser
(allow_requantize), as the golden data were made. Run nothing else meanwhile: two jobs on two cores ruin the figures.
"""
import argparse, ctypes, os, sys, time

import llama_cpp

def cache_dir():
    d = os.environ.get("MASTEER_CACHE_DIR")
    return d if d else os.path.join(os.path.expanduser("~"), ".cache", "masteer")

def convert(src, dst, ftype):
    if os.path.exists(dst):
        return dst
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), (dst + ".tmp").encode(), ctypes.byref(params))
    if rc != 0:
        sys.exit(f"quantize to {dst} failed: {rc}")
    os.replace(dst + ".tmp", dst)
    return dst

def tokens(n, seed):
    return [100 + (i * 7919 + seed * 104729) % 40000 for i in range(n)]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="", help="run only the files whose name contains this")
    args = ap.parse_args()
    q41 = os.path.join(cache_dir(), "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.exists(q41):
        sys.exit(f"{q41} missing: run the MASteer-rs tests or an example first")
    files = {
        "Q4_1": q41,
        "F32": convert(q41, os.path.join(cache_dir(), "SmolLM2-135M-Instruct.F32.gguf"), llama_cpp.LLAMA_FTYPE_ALL_F32),
        "F16": convert(q41, os.path.join(cache_dir(), "SmolLM2-135M-Instruct.F16.gguf"), llama_cpp.LLAMA_FTYPE_MOSTLY_F16),
        # The common download format; `speed --model <this file>` runs MASteer-rs on it.
        "Q4_K_M": convert(q41, os.path.join(cache_dir(), "SmolLM2-135M-Instruct.Q4_K_M.gguf"), llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M),
    }
    print(f"llama-cpp-python {llama_cpp.__version__}, {args.threads} threads, best of {args.reps}")
    for name, path in files.items():
        if args.only not in name:
            continue
        llm = llama_cpp.Llama(model_path=path, n_threads=args.threads, n_threads_batch=args.threads,
                              n_ctx=1024, n_batch=512, n_ubatch=512, verbose=False)
        res = {}
        for n in (128, 512):
            best = float("inf")
            for _ in range(args.reps):
                llm.reset()
                t = time.perf_counter()
                llm.eval(tokens(n, 1))
                best = min(best, time.perf_counter() - t)
            res[f"prefill {n}"] = n / best
        best = float("inf")
        for _ in range(args.reps):
            llm.reset()
            llm.eval(tokens(16, 0))
            t = time.perf_counter()
            for i in range(64):
                llm.eval([500 + i])
            best = min(best, time.perf_counter() - t)
        res["decode 64"] = 64 / best
        print(f"{name:>5}: " + ", ".join(f"{k} {v:6.1f} tok/s" for k, v in res.items()))
        del llm

if __name__ == "__main__":
    main()
