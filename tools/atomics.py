#!/usr/bin/env python3
"""Atomic read-modify-writes per message, from two callgrind runs.

An atomic read-modify-write (a mutex's lock or unlock, an Arc clone or drop)
is an x86 instruction with a `lock` prefix, or an `xchg` with memory. This
finds those instructions in BINARY with objdump, takes how often each ran
from two callgrind profiles made with `--dump-instr=yes --dump-line=no` (a
short and a long run of the same scenario), and prints the difference per
message, by function (the enclosing symbol, after inlining), then the total.
docs/performance.md, "The command", has the commands (docs/performance-history.md,
"Round 6", what they found).

usage: tools/atomics.py BINARY SHORT.callgrind LONG.callgrind MESSAGES
       (MESSAGES: how many more messages the long run sent)
"""
import collections
import re
import subprocess
import sys


def locked_instructions(binary):
    out = subprocess.run(['objdump', '-d', '--no-show-raw-insn', binary],
                         capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r'^\s+([0-9a-f]+):\s+(.*)$', line)
        if not m:
            continue
        ins = m.group(2)
        if ins.startswith('lock ') or (ins.startswith('xchg') and '(' in ins):
            found[int(m.group(1), 16)] = ins
    return found


def counts(profile, object_name):
    """Executions per instruction address of `object_name`'s code."""
    c = collections.Counter()
    names = {}
    obj = None
    last = 0
    after_call = False
    for line in open(profile):
        line = line.rstrip('\n')
        m = re.match(r'(c?ob)=\((\d+)\)(?: (.*))?$', line)
        if m:
            if m.group(3):
                names[m.group(2)] = m.group(3)
            if m.group(1) == 'ob':
                obj = names.get(m.group(2))
            continue
        if line.startswith('calls='):
            after_call = True  # the next cost line is the call's, not an instruction's
            continue
        m = re.match(r'^(0x[0-9a-f]+|[+-]\d+|\*)\s+(\d+)', line)
        if not m:
            continue
        p = m.group(1)
        pos = last if p == '*' else int(p, 16) if p.startswith('0x') else last + int(p)
        last = pos
        if after_call:
            after_call = False
            continue
        if obj and obj.endswith(object_name):
            c[pos] += int(m.group(2))
    return c


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    binary, short, long_, messages = sys.argv[1:5]
    messages = int(messages)
    name = binary.rsplit('/', 1)[-1]
    locked = locked_instructions(binary)
    a, b = counts(short, name), counts(long_, name)
    rows = []
    for addr, ins in locked.items():
        per = (b.get(addr, 0) - a.get(addr, 0)) / messages
        if abs(per) >= 0.01:
            rows.append((per, addr, ins))
    symbols = subprocess.run(['addr2line', '-f', '-C', '-e', binary] + [hex(r[1]) for r in rows],
                             capture_output=True, text=True).stdout.splitlines()[::2]
    for (per, addr, ins), sym in sorted(zip(rows, symbols), key=lambda x: -x[0][0]):
        print(f'{per:6.2f}  {addr:x}  {ins[:36]:36}  {sym[:100]}')
    print(f'total per message: {sum(r[0] for r in rows):.2f}')


if __name__ == '__main__':
    main()
