"""``python -m matgnn.matbench``: see :mod:`matgnn.matbench.runner`."""

from matgnn.matbench.runner import main

main()
