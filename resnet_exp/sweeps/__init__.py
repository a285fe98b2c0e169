"""The sweep wing: what a sweep checks before any job starts (``checks``), the Hydra callback that
runs those checks and sums the sweep up at its end (``callback``), and the sequential sweeper's
rounds (``sequential``; its Hydra plugin lives in ``hydra_plugins/resnet_exp``)."""
