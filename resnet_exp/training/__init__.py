"""Training one job: the LightningModule (classifier.py), its callbacks (guard.py, precise_bn.py,
diagnostics.py; built from the config by job_callbacks.py), the machine's settings (hardware.py),
everything built from a config (build.py), and one job from config to its end (fit.py)."""
