"""Benchmarks, run on demand: each script prints its figures and the ratios against its baselines."""

import resource


def peak_rss_mib() -> float:
    """This process's own peak resident set size in MiB (Linux: VmHWM, the high-water mark of its address space).
    Not `ru_maxrss`: Linux carries the larger of the old and the new address space's peak across exec, so a child
    started by a benchmark that holds a million members' worth of memory reports the parent's peak as its own."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
