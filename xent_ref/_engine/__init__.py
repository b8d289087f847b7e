"""What the math shares: argument checks and their messages, the dtypes, the
low-precision policy, reductions, and blocking over the CPU's threads. It imports
nothing else of the package and knows no file format."""
