from pathlib import Path

#: shipped real Matbench data (see data/README.md): complete official tables of two composition
#: tasks and the first 80 rows of the phonons task as a partial copy
DATA = Path(__file__).parent / "data"
