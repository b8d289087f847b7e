"""Teaching: ``explain`` (every step of a loss on a small input, as a table, text or
HTML), the worked examples of the source documents, and the text of both in each
language."""
