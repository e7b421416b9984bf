"""Stage 1: what only the machine's PID 1 does before it supervises anything."""
