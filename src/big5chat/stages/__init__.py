"""One module per pipeline stage: ``run(cfg) -> Result``. The stage's notebook calls ``run`` and shows what it returns."""
