"""Training one job: the LightningModule (classifier.py, with precise BN: precise_bn.py), the
callbacks the config builds (job_callbacks.py: the divergence guard, guard.py, and the signal
probe, diagnostics.py), the machine's settings (hardware.py), everything built from a config
(build.py), the speed bench's timed paths (speed.py), and one job from config to its end (fit.py)."""
