"""Compare the machine code of matching functions in two builds of lip_det._C, by demangled name
(after optional OLD=>NEW renames), addresses of constants and call targets aside: identical code
means identical speed.

    python tools/dev/compare_disassembly.py OLD.so NEW.so NAME_REGEX [OLD=>NEW ...]

Needs binutils (nm, objdump).
"""
import re
import subprocess
import sys
def funcs(so):
    out = subprocess.run(['nm', '-C', '-S', '--defined-only', so], capture_output=True, text=True).stdout
    res = {}
    for ln in out.splitlines():
        m = re.match(r'([0-9a-f]+) ([0-9a-f]+) [tTwW] (.*)', ln)
        if m: res[m.group(3)] = (int(m.group(1), 16), int(m.group(2), 16))
    return res
def code(so, addr, size):
    # read bytes from file: find section offset via readelf
    return subprocess.run(['objdump', '-d', '--no-show-raw-insn', f'--start-address={addr}', f'--stop-address={addr+size}', so], capture_output=True, text=True).stdout
def norm(txt):
    # drop addresses and symbolic targets that move with layout
    lines = []
    for ln in txt.splitlines():
        m = re.match(r'\s*[0-9a-f]+:\s*(.*)', ln)
        if not m: continue
        ins = re.sub(r'\b[0-9a-f]{4,}\b', 'ADDR', m.group(1))
        ins = re.sub(r'<[^>]*>', '<SYM>', ins)
        ins = re.sub(r'-?0x[0-9a-f]+\(%rip\)', 'RIP', ins)
        ins = ins.split('#')[0].strip()
        lines.append(ins)
    return lines
a, b, pat = sys.argv[1], sys.argv[2], sys.argv[3]
renames = [tuple(r.split('=>')) for r in sys.argv[4:]]
fa, fb = funcs(a), funcs(b)
same = diff = missing = 0
for name, (addr, size) in sorted(fa.items()):
    if not re.search(pat, name): continue
    nb = name
    for old, new in renames: nb = nb.replace(old, new)
    if nb not in fb:
        print('MISSING in B:', nb[:150]); missing += 1; continue
    ca, cb = norm(code(a, addr, size)), norm(code(b, *fb[nb]))
    if ca == cb: same += 1
    else:
        diff += 1; print('DIFF', len(ca), len(cb), name[:150])
print(f'same {same} diff {diff} missing {missing}')
