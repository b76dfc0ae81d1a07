"""Summarise a py-spy ``raw`` (collapsed stacks) profile: where the samples go, by function
(inclusive) and by leaf (self time). ``python bench/profile_summary.py profile.txt``"""

from __future__ import annotations

import sys
from collections import Counter


def main(path: str, top: int = 35) -> None:
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in open(path):
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += n
        leaf[frames[-1]] += n
    print(f"{total} samples\n\n-- inclusive --")
    for frame, n in inclusive.most_common(top):
        print(f"{100 * n / total:5.1f}%  {frame}")
    print("\n-- self --")
    for frame, n in leaf.most_common(top):
        print(f"{100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 35)
