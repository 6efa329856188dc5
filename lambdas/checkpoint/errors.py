"""The one error of the checkpoint reader, and the fix every unreadable archive shares."""

# What to do about an archive that cannot be read: it is the job's output, not ours to repair.
RERUN_HINT = "check that the training job completed; if it did, run it again to rewrite its output"


class OutputArchiveError(ValueError):
    """The output archive is unreadable or holds no usable manifest; the message says which."""
