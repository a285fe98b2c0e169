"""A job's files and its life: every record's name and its one writer (records.py), the job's lock,
attempts and checkpoints (job.py), stopping on a signal (signals.py), a run on several processes
(ddp.py), and what the console shows (console.py). Below training: it knows no network and no data."""
