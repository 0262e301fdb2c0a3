"""The lab tool's code, one module per concern: common (constants, the lab's state, small
helpers), processes (processes and listeners), cgroups, config (settings, lock, state file,
preflight), image, hosts (down, up, stop, restart) and cli (status, cpu, limit-cpu, the
arguments, main). Its entry point is tools/lab.py, whose docstring tells what the lab is and
how to use it.
"""
