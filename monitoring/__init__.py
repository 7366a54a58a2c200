"""Data- and model-quality monitoring in Model Monitor's formats (runtime, in the image)."""
