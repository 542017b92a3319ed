"""The parts of scripts/gpu_check.py, one job a file:

    settings.py   the sizes of the full check and of the dry run, the flags, the Settings, each run's config
    budget.py     time limits: a stage or a run that fails or runs out of time is recorded, the rest goes on
    stages.py     the stages (data, training runs, benchmarks in subprocesses, evaluation, other profiles) and what
                  they measure (seconds per step, loader waits, peak GPU memory)
    report.py     the environment, the JSON and the Markdown table
"""
