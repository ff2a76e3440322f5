"""File-system layer: atomic writes, images and grids, model directories, run directories."""
