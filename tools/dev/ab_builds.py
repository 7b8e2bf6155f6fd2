"""Alternating-process A/B of two builds of lip_det._C: median ms per call of the fused ops.

    python tools/dev/ab_builds.py OLD_ROOT NEW_ROOT METHOD:SHAPE[,METHOD:SHAPE...] ROUNDS THREADS

OLD_ROOT and NEW_ROOT each hold a lip_det package (e.g. a copy of lip_det/ with the old .so);
METHOD and SHAPE are benchmark_ops.py's names, the shape's height and width halved. Each round
runs both builds in fresh processes, in alternating order, and prints new/old per op; the last
lines are the medians over rounds. Stop other work on the machine while it runs.
"""
import json
import os.path as osp
import statistics
import subprocess
import sys

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
CHILD = r'''
import sys, time, json, statistics
sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[4])
import torch
torch.set_num_threads(int(sys.argv[3]))
import lip_det, benchmark_ops as b
assert lip_det.__file__.startswith(sys.argv[1]), lip_det.__file__
res = {}
for spec in sys.argv[2].split(','):
    method, shape_name = spec.split(':')
    shape, k, s, p = b.SHAPES[shape_name]
    shape = tuple(shape[:2]) + tuple(d // 2 for d in shape[2:])
    op = getattr(torch.ops.lip_det, b.OP_NAMES[method])
    ins = b.make_inputs(method, shape)
    args = (*ins, *b.SCALARS.get(method, ()), list(k), list(s), list(p), False)
    y = op(*args); g = torch.randn_like(y)
    bwd = getattr(torch.ops.lip_det, b.OP_NAMES[method] + '_backward')
    for _ in range(3): op(*args); bwd(g, *args)
    tf, tb = [], []
    for _ in range(12):
        t = time.perf_counter(); op(*args); tf.append(time.perf_counter() - t)
        t = time.perf_counter(); bwd(g, *args); tb.append(time.perf_counter() - t)
    res[spec] = (1e3 * statistics.median(tf), 1e3 * statistics.median(tb))
print(json.dumps(res))
'''
a, b, specs, rounds, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
ratios = {}
for r in range(rounds):
    out = {}
    for root in ((a, b) if r % 2 == 0 else (b, a)):
        out[root] = json.loads(subprocess.run([sys.executable, '-c', CHILD, root, specs, threads, TOOLS],
                                              capture_output=True, text=True, check=True).stdout)
    for spec in out[a]:
        ra = out[b][spec][0] / out[a][spec][0], out[b][spec][1] / out[a][spec][1]
        ratios.setdefault(spec, []).append(ra)
        print(f'round {r} {spec}: fwd {out[a][spec][0]:.2f} -> {out[b][spec][0]:.2f} ms ({ra[0]:.3f}), '
              f'bwd {out[a][spec][1]:.2f} -> {out[b][spec][1]:.2f} ms ({ra[1]:.3f})', flush=True)
for spec, rs in ratios.items():
    print(f'{spec}: median new/old fwd {statistics.median(x[0] for x in rs):.3f}, '
          f'bwd {statistics.median(x[1] for x in rs):.3f} over {len(rs)} rounds')
