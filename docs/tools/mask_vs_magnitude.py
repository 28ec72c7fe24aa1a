#!/usr/bin/env python3
"""How far a movement-pruning mask is from magnitude pruning, per prunable matrix.

Usage: python3 docs/tools/mask_vs_magnitude.py SNAPSHOT_DIR PRETRAINED_MODEL_DIR

SNAPSHOT_DIR is a committed snapshot of a run (RUN/snapshots/STEP: state.safetensors holds
weight/, score/ and mask/ tensors); PRETRAINED_MODEL_DIR holds the model.safetensors the run
started from. For each encoder Linear matrix it prints the fraction kept, the share of the kept
weights that magnitude pruning (top |W0| at the same count) would also keep (equal to the
fraction kept when the two are unrelated), the correlation of the scores with |W0| and with the
movement W0 * (W - W0), and how far the weights moved relative to their size. Needs numpy.
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None}


def open_safetensors(path):
    f = open(path, "rb")
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    base = 8 + n

    def get(name):
        h = header[name]
        if DTYPES.get(h["dtype"]) is None:
            sys.exit(f"{path}: tensor {name} has dtype {h['dtype']}, only F32/F16 are read")
        a, b = h["data_offsets"]
        f.seek(base + a)
        return np.frombuffer(f.read(b - a), dtype=DTYPES[h["dtype"]]).reshape(h["shape"]).astype(np.float32)

    return header, get


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    snap_header, snap = open_safetensors(sys.argv[1].rstrip("/") + "/state.safetensors")
    pre_header, pre = open_safetensors(sys.argv[2].rstrip("/") + "/model.safetensors")
    masks = sorted(k[len("mask/"):] for k in snap_header if k.startswith("mask/"))
    if not masks:
        sys.exit(f"{sys.argv[1]}: no mask/ tensors (not a movement or magnitude snapshot?)")
    print("matrix\tkept\tkept_also_by_magnitude\tcorr(score,|W0|)\tcorr(score,W0*dW)\tmean|dW|/mean|W0|")
    totals = np.zeros(3)
    for name in masks:
        candidates = [k for k in pre_header if k == name or k.endswith("." + name)]
        if not candidates:
            sys.exit(f"{sys.argv[2]}: no tensor named {name} (or ending in .{name})")
        w0 = pre(candidates[0])
        w, mask = snap("weight/" + name), snap("mask/" + name)
        kept = mask > 0.5
        count = int(kept.sum())
        magnitude_kept = np.abs(w0) >= np.sort(np.abs(w0).ravel())[-count] if count else np.zeros_like(kept)
        overlap = (magnitude_kept & kept).sum() / max(count, 1)
        row = [kept.mean(), overlap]
        if "score/" + name in snap_header:
            s = snap("score/" + name).ravel()
            row += [np.corrcoef(s, np.abs(w0).ravel())[0, 1], np.corrcoef(s, (w0 * (w - w0)).ravel())[0, 1]]
        else:
            row += [float("nan"), float("nan")]
        row.append(np.abs(w - w0).mean() / np.abs(w0).mean())
        totals += [count, (magnitude_kept & kept).sum(), kept.size]
        print(name + "\t" + "\t".join(f"{v:.3f}" for v in row))
    print(f"all\t{totals[0] / totals[2]:.3f}\t{totals[1] / max(totals[0], 1):.3f}")


if __name__ == "__main__":
    main()
