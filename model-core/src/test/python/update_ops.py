"""Where the driver update's device time goes (issue 19's 15 ms target): the op sequence of
DeviceDriverUpdate and DevicePacking re-expressed in PyTorch eager on BERT-base-sized flat state
(cap-movement, a step on the ramp at 33 % kept), each part timed alone (synchronised), medians of
R runs, with alternatives for the mask bits and the top-k beside the current sequence. What it
gives is the floor of these ops without DJL's JNI calls and the JVM's copies; run it in the same
device call as `DriverUpdateBenchmark --device=gpu` to see how much of the Java figure is the
ops themselves (docs/performance.md). Needs python3 with a CUDA torch, e.g. on the GPU machine:
  python3 model-core/src/test/python/update_ops.py 20 [KEPT_FRACTION, default 0.331]
Written 2026-12-07 (results in docs/results.md, "Run 9")."""
import sys, time, statistics
import torch

R = int(sys.argv[1]) if len(sys.argv) > 1 else 20
dev = torch.device("cuda")
torch.manual_seed(0)

# BERT-base trainable layout (names only matter for which are prunable)
sizes, prunable = [], []
def add(n, p=False):
    if p: prunable.append(len(sizes))
    sizes.append(n)
for n in (30522 * 768, 512 * 768, 2 * 768, 768, 768): add(n)
for _ in range(12):
    for _ in range(4): add(768 * 768, True); add(768)
    add(768); add(768)
    add(3072 * 768, True); add(3072)
    add(768 * 3072, True); add(768)
    add(768); add(768)
add(768 * 768); add(768); add(2 * 768); add(2)
offs = [0]
for s in sizes: offs.append(offs[-1] + s)
N = offs[-1]
print(f"trainable {N:,}, prunable matrices {len(prunable)}")

w = torch.randn(N, device=dev) * 0.02
s = torch.randn(N, device=dev)
m1 = torch.zeros(N, device=dev); v1 = torch.zeros(N, device=dev) + 1e-8
sm = torch.zeros(N, device=dev); sv = torch.zeros(N, device=dev) + 1e-8
g = torch.randn(N, device=dev) * 1e-3
pflag = torch.zeros(N, device=dev)
for j in prunable: pflag[offs[j]:offs[j + 1]] = 1
mask = torch.ones(N, device=dev)
kept_frac = float(sys.argv[2]) if len(sys.argv) > 2 else 0.331
pinned = torch.empty(400 * 1024 * 1024, dtype=torch.uint8).pin_memory()

def seg(x, i): return x[offs[i]:offs[i + 1]]

def timed(name, fn, reps=R):
    fn(); torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        torch.cuda.synchronize(); t0 = time.perf_counter()
        fn(); torch.cuda.synchronize()
        ts.append((time.perf_counter() - t0) * 1e3)
    print(f"{name:<60s} {statistics.median(ts):7.2f} ms")
    return statistics.median(ts)

def sc(v): return torch.full((), v, device=dev)

def adamw(p, gr, m, v, decay):
    m.mul_(sc(0.9)); m.add_(gr * sc(0.1))
    v.mul_(sc(0.999)); b = gr * sc(0.001); b.mul_(gr); v.add_(b)
    den = v.sqrt(); den.add_(sc(1e-8))
    u = m * sc(1e-4); u.div_(den); p.sub_(u)
    if decay:
        d = p * sc(1e-6); p.sub_(d)

def clip_and_adam():
    gw = g * mask; gs = g * w; gs.mul_(pflag)
    sq = (gw.double().dot(gw.double()) + gs.double().dot(gs.double())).item()
    adamw(w, gw, m1, v1, True)
    adamw(s, gs, sm, sv, False)

groups = {}
for j in prunable: groups.setdefault(sizes[j], []).append(j)

def select(threshold):
    """Per group of same-sized matrices: the stacked rows, their k-th largest value t (from
    threshold(x, n, k)), the rows' entries >= t; thresholds and counts read in one copy."""
    outs, summ = [], []
    for n, mem in groups.items():
        k = int(round(kept_frac * n))
        x = torch.stack([seg(s, j) for j in mem])
        t = threshold(x, n, k)
        at = x >= t
        summ.append(torch.cat([t.reshape(-1).double(), at.sum(1).double()]))
        outs.append(at)
    torch.cat(summ).cpu()
    return outs

def topk_current():
    return select(lambda x, n, k: x.topk(k, 1, True, False)[0].min(1, keepdim=True)[0])

def topk_kthvalue():
    return select(lambda x, n, k: x.kthvalue(n - k + 1, 1, keepdim=True)[0])

def topk_sort():
    # what DJL offers besides topK: an ascending sort along the row, the column n - k
    return select(lambda x, n, k: x.sort(1)[0][:, n - k:n - k + 1])

def topk_per_matrix():
    # one topk per matrix (1 slice of >= 100,000: ATen takes its sort path for <= 10 slices)
    outs, summ = [], []
    for n, mem in groups.items():
        k = int(round(kept_frac * n))
        rows = []
        for j in mem:
            x = seg(s, j)
            t = x.topk(k, 0, True, False)[0].min()
            rows.append(x >= t)
            summ.append(t.reshape(1).double())
        outs.append(torch.stack(rows))
    torch.cat(summ).cpu()
    return outs

def new_mask(outs):
    rows = {}
    for (n, mem), at in zip(groups.items(), outs):
        keep = at.float()
        for r, j in enumerate(mem): rows[j] = keep[r]
    ones = torch.ones(max(sizes), device=dev)
    parts = [rows[i] if i in rows else ones[:sizes[i]] for i in range(len(sizes))]
    return torch.cat(parts)

outs = topk_current()
mask = new_mask(outs)
w8 = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8, device=dev).reshape(1, 8)

def bits_current():
    allm = torch.cat([seg(mask, j) for j in prunable])
    keep = allm.ne(sc(0.0)).to(torch.uint8)
    b = (keep.reshape(-1, 8) * w8).sum(1).to(torch.uint8)
    pinned[:b.numel()].copy_(b)

def bits_from_groups():
    for at in outs:
        keep = at.to(torch.uint8)
        b = (keep.reshape(-1, 8) * w8).sum(1).to(torch.uint8)
        pinned[:b.numel()].copy_(b)

wf = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.float16, device=dev).reshape(8, 1)
def bits_groups_matmul():
    for at in outs:
        b = (at.to(torch.float16).reshape(-1, 8) @ wf).reshape(-1).to(torch.uint8)
        pinned[:b.numel()].copy_(b)

def bits_groups_view():
    # bool -> uint8 view (no copy), and the sum kept in uint8 (no int64 intermediate)
    for at in outs:
        u = at.view(torch.uint8).reshape(-1, 8)
        b = (u * w8).sum(1, dtype=torch.uint8)
        pinned[:b.numel()].copy_(b)

pw = (2.0 ** torch.arange(-126, 127, dtype=torch.float64)).float().to(dev)
host_h = torch.empty(N, dtype=torch.int16)
def pack_stream():
    keep = mask.ne(sc(0.0))
    stream = w[keep]
    n = stream.numel(); blocks = (n + 1023) // 1024; padded = blocks * 1024
    v = stream.float()
    if padded > n: v = torch.cat([v, torch.zeros(padded - n, device=dev)])
    v = v.reshape(blocks, 1024)
    mx = v.abs().amax(1)
    e = (14 - mx.double().log2().floor()).clamp(-126, 126)
    ok = (mx > 0) & ~mx.isinf() & ~mx.isnan()
    e = torch.where(ok, e, torch.zeros((), dtype=torch.float64, device=dev))
    idx = (e + 126).long()
    scale = pw[idx].reshape(blocks, 1)
    halves = (v * scale).half().reshape(padded)
    both = torch.cat([halves, e.half()])
    nb = both.numel() * 2
    pinned[:nb].view(torch.float16).copy_(both)
    host_h[:n].copy_(pinned[:2 * n].view(torch.int16))
    return n

print(f"stream entries {pack_stream():,}")
t_upd = timed("update: clip norm + AdamW on W and S (Java's op order)", clip_and_adam)
def clip_only():
    gw = g * mask; gs = g * w; gs.mul_(pflag)
    return (gw.double().dot(gw.double()) + gs.double().dot(gs.double())).item()
timed("  of it: masked gradients + float64 norm + read", clip_only)
timed("  of it: AdamW on W (with decay)", lambda: adamw(w, g, m1, v1, True))
timed("  of it: AdamW on S", lambda: adamw(s, g, sm, sv, False))
# scores kept only over the prunable matrices (85 M of the 109.5 M entries, gathered into one
# vector) instead of the whole vector with zeros elsewhere: what that layout would save
P = sum(sizes[j] for j in prunable)
s_c, sm_c, sv_c, g_c = s[:P].clone(), sm[:P].clone(), sv[:P].clone(), g[:P].clone()
timed(f"  AdamW on S over the prunable entries only ({P:,})", lambda: adamw(s_c, g_c, sm_c, sv_c, False))
idx_views = [seg(g, j) for j in prunable]
timed("  gathering the prunable entries of a vector into one (cat of 72 views)", lambda: torch.cat(idx_views))
del s_c, sm_c, sv_c, g_c
try:
    # not reachable through DJL 0.35.1: what one fused kernel per tensor list would cost
    pw_, ps_ = torch.nn.Parameter(w.clone()), torch.nn.Parameter(s.clone())
    pw_.grad, ps_.grad = g.clone(), g.clone()
    opt = torch.optim.AdamW([pw_, ps_], lr=1e-4, weight_decay=0.01, fused=True)
    timed("for scale: torch.optim.AdamW(fused=True) on W and S, no clip", opt.step)
    del pw_, ps_, opt
except Exception as e:
    print(f"fused AdamW not available here: {e}")
# the unit the eager sequences are made of: one binary kernel over the 109.5 M-value vector
# (read two, write one) and one in-place kernel (read one, write one); the Java update issues
# about 30 such kernels, so this times its floor without fusion
buf = torch.empty_like(w)
timed("one binary op over the whole vector (mul, out=)", lambda: torch.mul(w, g, out=buf))
timed("one in-place op over the whole vector (mul_ by a scalar)", lambda: buf.mul_(sc(1.0)))
timed("float32 -> float64 copy of the whole vector", lambda: w.double())
del buf
t_top = timed("top-k: stack + topk(sorted=False) + min + gte + read", topk_current)
timed("top-k alternative: stack + kthvalue + gte + read", topk_kthvalue)
timed("top-k alternative: stack + sort + column n-k + gte + read", topk_sort)
timed("top-k alternative: one topk per matrix, no stack", topk_per_matrix)
t_new = timed("new mask vector (keep -> float, cat with ones)", lambda: new_mask(outs))
t_bits = timed("mask bits now: cat segments, ne, uint8, *w, sum(int64), down", bits_current)
timed("mask bits from the top-k's bool rows: uint8, *w, sum, down", bits_from_groups)
timed("mask bits from bool rows: fp16 @ weights, down", bits_groups_matmul)
timed("mask bits from bool rows: uint8 view, *w, sum(dtype=uint8)", bits_groups_view)
t_pack = timed("packed stream: ne, w[keep], fp16 blocks, down, to heap", pack_stream)
print(f"{'sum of the current parts':<60s} {t_upd + t_top + t_new + t_bits + t_pack:7.2f} ms")

def whole(bits):
    global outs, mask
    clip_and_adam(); outs = topk_current(); mask = new_mask(outs); bits(); pack_stream()
timed("the current sequence in one go", lambda: whole(bits_current))
timed("the same with mask bits from the bool rows", lambda: whole(bits_groups_view))
