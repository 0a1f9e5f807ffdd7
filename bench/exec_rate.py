"""Runs a command RATE times per second for SECONDS seconds (no shell) and prints the CPU
seconds (user + system) its processes used and how many ran. Only the children's CPU is
counted: the spawning loop's own cost is left out, which favours exec mode."""
import os
import resource
import subprocess
import sys
import time

rate, seconds, argv = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
runs, failures = 0, 0
start = time.monotonic()
next_at = start
while time.monotonic() - start < seconds:
    if subprocess.run(argv, stdout=subprocess.DEVNULL).returncode != 0:
        failures += 1
    runs += 1
    next_at += 1 / rate
    delay = next_at - time.monotonic()
    if delay > 0:
        time.sleep(delay)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{usage.ru_utime + usage.ru_stime:.3f} {runs} {failures} {time.monotonic() - start:.2f}")
