"""What the math shares: argument checks and their messages, the dtypes, the
low-precision policy, reductions, and blocking over the CPU's threads; and what the
printing wings share (``i18n``: the reader of their message catalogues, one JSON
object per language). It imports nothing else of the package and knows no other file
format."""
