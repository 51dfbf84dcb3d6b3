"""Experiment runners with a command line: ``python -m zoo.experiments.hal --help``. Each
is a module with ``main(argv)``; scripts/ holds thin wrappers of the same name."""
