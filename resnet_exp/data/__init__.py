"""The data: Fashion-MNIST's files (``fashion_mnist``), the pipelines that turn its uint8 images into
batches at the training size (``pipelines``), the order they are served in (``sampling``), and the
LightningDataModule that puts them together (``module``). This face imports no torch: the CLI's
checks import ``DataError`` from here before torch is loaded.
"""


class DataError(Exception):
    """The data set cannot be found or a file of it is not what it should be."""
