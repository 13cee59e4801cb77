#!/usr/bin/env python3
"""rec-profile.py MAP [TOP] - where a recompiler run spent its time, by guest block.

Reads `perf script -F ip,sym` output on stdin (a `perf record` of vireo-vm run with
VIREO_PERF_MAP=1 or 2) and the translation map vireo-vm wrote (/tmp/perf-<pid>.map).
Samples inside translated code are charged to the guest block (RIP/guest-physical
address) whose translation holds them; other samples to the host symbol perf names.
Prints the share of each, the TOP hottest blocks and, with VIREO_PERF_MAP=2, their guest
instructions (inline or through the interpreter's handler).

Example:
  VIREO_PERF_MAP=2 perf record -o p.data vireo-vm --exec soft ...
  perf script -i p.data -F ip,sym | tools/bench/rec-profile.py /tmp/perf-<pid>.map 20
"""
import bisect
import collections
import sys


def load_map(path):
    blocks = []  # (start, size, name, [instruction lines])
    for line in open(path):
        if line.startswith('#'):
            if blocks:
                blocks[-1][3].append(line[1:].rstrip())
            continue
        parts = line.split()
        if len(parts) != 3:
            continue
        blocks.append((int(parts[0], 16), int(parts[1], 16), parts[2], []))
    blocks.sort(key=lambda b: b[0])
    return blocks


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    blocks = load_map(sys.argv[1])
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    starts = [b[0] for b in blocks]
    per_block = collections.Counter()
    per_host = collections.Counter()
    total = 0
    for line in sys.stdin:
        parts = line.split(None, 1)
        if not parts:
            continue
        try:
            ip = int(parts[0], 16)
        except ValueError:
            continue
        total += 1
        i = bisect.bisect_right(starts, ip) - 1
        # A later translation at the same address (after a code flush) wins: the map is in time order.
        if i >= 0 and ip < blocks[i][0] + blocks[i][1]:
            per_block[i] += 1
        else:
            per_host[parts[1].strip() if len(parts) > 1 else '?'] += 1
    if not total:
        sys.exit('rec-profile: no samples on stdin')
    in_code = sum(per_block.values())
    print('samples %d: translated code %.1f%%, host %.1f%%' % (total, 100.0 * in_code / total,
                                                              100.0 * (total - in_code) / total))
    print('\nhost symbols:')
    for name, n in per_host.most_common(top):
        print('  %6.2f%%  %s' % (100.0 * n / total, name))
    print('\nguest blocks:')
    for i, n in per_block.most_common(top):
        start, size, name, insns = blocks[i]
        print('  %6.2f%%  %s (%d bytes of host code)' % (100.0 * n / total, name, size))
        for text in insns:
            print('             %s' % text)


if __name__ == '__main__':
    main()
