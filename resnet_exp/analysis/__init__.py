"""Reading and judging finished sweeps: the jobs, their statistics, the plots, the report."""
