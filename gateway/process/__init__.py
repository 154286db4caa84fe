"""The process: the composition root that builds every part, serving, signals and shutdown."""
