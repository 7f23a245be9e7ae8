"""The two errors of loading: a bad file (a ``ValueError``, so callers may catch either) and no network."""


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model: missing, unexpected or mis-shaped tensors, or a corrupt file."""


class DownloadError(RuntimeError):
    """The weights could not be fetched from the Hugging Face hub (usually: no network)."""
