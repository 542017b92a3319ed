"""The lab: the apparatus around the method, for the notebooks, the sweeps and the benchmarks.

The core of ``ssync_lib`` (config, data, models, objectives, metrics, diagnostics, checkpoint, train, evaluate,
official) is the method and what runs it; it never imports the lab (tests/test_layering.py). The lab builds on it:

    run_cache.py   reuse a finished run or a shipped checkpoint, else train (the notebooks' models)
    notebook.py    what every notebook does before it teaches; widgets.py  the notebooks' interactive explorers
    captions/      the sentences under notebook 02's figures, computed from what they draw
    experiment/    the sweep: objectives x seeds x slot counts, trained, evaluated, summarised
    claims.py      the paper's claims stated from a sweep summary
    gradients.py   per-term gradient norms and cosines of a model or a checkpoint
    viz/           all plotting;  bench/  benchmarks, one command line (python -m ssync_lib.lab.bench)

docs/architecture.md says why each module sits where it does.
"""
