"""One module per figure; each defines ``FIGURE`` (a :class:`paper_figures.Figure`)."""
