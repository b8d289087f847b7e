"""xent-ref's test suite (a package, so a test imports its helpers as ``tests.helpers``)."""
